// The "state" group: where the state several gateways share lives (issue 11).  See
// config_reader.h and subproxy.conf(5), STATE.
#include "ops/config_reader.h"

namespace subproxy::config_detail {

namespace {

// "127.0.0.1:6379", "[::1]:6379" or "/run/redis/redis.sock" into host/port or socket.  Numeric
// only: hiredis resolves a name with a blocking getaddrinfo() on the control loop, at every
// reconnection, while the loop also serves the control socket and the status endpoint.
bool splitAddress(const std::string& text, StateConfig& out, std::string& why) {
    if (!text.empty() && text.front() == '/') {
        if (text.size() >= 108) {  // sizeof sockaddr_un::sun_path
            why = "a unix socket path must be shorter than 108 characters";
            return false;
        }
        out.socket = text;
        out.host.clear();
        return true;
    }
    std::string host;
    std::string port;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find("]:");
        if (close == std::string::npos) {
            why = "an IPv6 address is written [ADDRESS]:PORT";
            return false;
        }
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string::npos || text.find(':') != colon) {
            why = "expected HOST:PORT ([ADDRESS]:PORT for IPv6) or an absolute unix socket path";
            return false;
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    if (!parseIpAddress(host) || host.find_first_of("/%") != std::string::npos) {
        why = "the host must be a numeric IPv4 or IPv6 address (names would be resolved on the control loop)";
        return false;
    }
    char* end = nullptr;
    const long n = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end != '\0' || n < 1 || n > 65535) {
        why = "the port must be a number from 1 to 65535";
        return false;
    }
    out.host = host;
    out.port = static_cast<int>(n);
    out.socket.clear();
    return true;
}

}  // namespace

void readState(const Reader& r, const Setting& s, StateConfig& out) {
    r.requireGroup(s);
    r.checkKeys(s, {"backend", "address", "username", "password", "database", "key_prefix", "connect_timeout",
                    "command_timeout", "replay_limit", "retry_interval"});
    r.optional(s, "backend", [&](const Setting& v) {
        out.backend = r.readEnum<StateBackend>(v, {{"local", StateBackend::Local}, {"redis", StateBackend::Redis}});
    });
    r.optional(s, "address", [&](const Setting& v) { out.address = r.readNonEmptyString(v); });
    std::string why;
    if (!splitAddress(out.address, out, why)) {
        r.fail(s.exists("address") ? s["address"] : s, "'state.address' \"" + printable(out.address) + "\": " + why);
    }
    // Sent in AUTH: one line, no spaces in a user name (Redis ACL names have none).
    r.optional(s, "username", [&](const Setting& v) {
        out.username = r.readLineText(v);
        if (out.username.find(' ') != std::string::npos) {
            r.fail(v, "'state.username' must not contain spaces");
        }
    });
    r.optional(s, "password", [&](const Setting& v) { out.password = r.readLineText(v); });
    if (!out.username.empty() && out.password.empty()) {
        r.fail(s["username"], "'state.username' needs 'state.password' (Redis ACL users log in with both)");
    }
    r.optional(s, "database", [&](const Setting& v) { out.database = static_cast<int>(r.readInteger(v, 0, 15)); });
    r.optional(s, "key_prefix", [&](const Setting& v) {
        out.keyPrefix = r.readLineText(v);
        if (out.keyPrefix.find_first_of(" *?[]") != std::string::npos || out.keyPrefix.size() > 64) {
            r.fail(v, "'state.key_prefix' must be at most 64 characters without spaces or glob characters (*?[])");
        }
    });
    r.optional(s, "connect_timeout", [&](const Setting& v) {
        out.connectTimeoutMs = static_cast<int>(r.readInteger(v, 10, 30000));
    });
    // A session never waits on Redis; the bound is how long an unanswered command may hold
    // the connection before the outage is declared (and the updates are queued instead).
    r.optional(s, "command_timeout", [&](const Setting& v) {
        out.commandTimeoutMs = static_cast<int>(r.readInteger(v, 10, 5000));
    });
    r.optional(s, "replay_limit", [&](const Setting& v) {
        out.replayLimit = static_cast<int>(r.readInteger(v, 0, 10000000));
    });
    r.optional(s, "retry_interval", [&](const Setting& v) {
        out.retryInterval = static_cast<int>(r.readInteger(v, 1, 3600));
    });
}

}  // namespace subproxy::config_detail
