// Reading and validating the libconfig configuration.  Every check names FILE:LINE and the
// key path, because an operator running `subproxy -t` must be able to fix the file without
// reading our source.  Defaults live in config.h's member initialisers.
#include "config.h"

#include <arpa/inet.h>
#include <syslog.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <map>
#include <sstream>
#include <tuple>
#include <utility>

#include <libconfig.h++>

#include "text_util.h"

namespace subproxy {

namespace {

using libconfig::Setting;

std::string formatWhat(const std::string& file, int line, const std::string& message) {
    if (line > 0) {
        return file + ":" + std::to_string(line) + ": " + message;
    }
    return file + ": " + message;
}

std::string quoted(const std::string& s) { return "'" + s + "'"; }

// Walks the parsed tree and turns every problem into a ConfigError with FILE:LINE.
class Reader {
public:
    Reader(std::string name, std::string text) : name_(std::move(name)) {
        if (!text.empty()) {
            sources_[name_] = splitLines(text);
        }
    }

    [[noreturn]] void fail(const Setting& s, const std::string& message) const {
        throw ConfigError(fileOf(s), static_cast<int>(s.getSourceLine()), message);
    }

    std::string fileOf(const Setting& s) const {
        const char* file = s.getSourceFile();
        return file != nullptr ? std::string(file) : name_;
    }

    // Unknown keys are errors, not warnings: a typo like "upstream.hots" would otherwise
    // silently leave the default in place.
    void checkKeys(const Setting& group, std::initializer_list<const char*> allowed) const {
        for (const Setting& child : group) {
            const char* name = child.getName();
            bool known = false;
            for (const char* key : allowed) {
                if (name != nullptr && std::strcmp(name, key) == 0) {
                    known = true;
                }
            }
            if (!known) {
                fail(child, "unknown key " + quoted(child.getPath()));
            }
        }
    }

    void requireGroup(const Setting& s) const {
        if (!s.isGroup()) {
            fail(s, quoted(s.getPath()) + " must be a group { ... }");
        }
    }

    std::string readString(const Setting& s) const {
        if (s.getType() != Setting::TypeString) {
            fail(s, quoted(s.getPath()) + " must be a string");
        }
        return s.c_str();
    }

    std::string readNonEmptyString(const Setting& s) const {
        std::string value = readString(s);
        if (value.empty()) {
            fail(s, quoted(s.getPath()) + " must not be empty");
        }
        return value;
    }

    // Reply texts and names end up on the wire: no CR, LF or other control bytes.
    std::string readLineText(const Setting& s) const {
        std::string value = readNonEmptyString(s);
        for (char c : value) {
            const auto byte = static_cast<unsigned char>(c);
            if (byte < 0x20 || byte == 0x7f) {
                fail(s, quoted(s.getPath()) + " must not contain control characters");
            }
        }
        return value;
    }

    bool readBool(const Setting& s) const {
        if (s.getType() != Setting::TypeBoolean) {
            fail(s, quoted(s.getPath()) + " must be a boolean (true or false)");
        }
        return static_cast<bool>(s);
    }

    long long readInteger(const Setting& s, long long min, long long max) const {
        long long value = 0;
        if (s.getType() == Setting::TypeInt) {
            value = static_cast<int>(s);
            checkNoWrap(s);
        } else if (s.getType() == Setting::TypeInt64) {
            value = static_cast<long long>(s);
        } else {
            fail(s, quoted(s.getPath()) + " must be an integer");
        }
        if (value < min || value > max) {
            fail(s, quoted(s.getPath()) + " must be between " + std::to_string(min) + " and " +
                        std::to_string(max) + ", not " + std::to_string(value));
        }
        return value;
    }

    int readPositiveInt(const Setting& s) const {
        return static_cast<int>(readInteger(s, 1, INT_MAX));
    }

    template <typename Enum>
    Enum readEnum(const Setting& s, std::initializer_list<std::pair<const char*, Enum>> values)
        const {
        const std::string text = readString(s);
        std::string allowed;
        for (const auto& [name, value] : values) {
            if (iequals(text, name)) {
                return value;
            }
            allowed += (allowed.empty() ? "\"" : ", \"") + std::string(name) + "\"";
        }
        fail(s, "invalid value \"" + printable(text) + "\" for " + quoted(s.getPath()) +
                    ": expected one of " + allowed);
    }

    // A string, or an array/list of strings; never empty.
    std::vector<std::string> readStringList(const Setting& s) const {
        std::vector<std::string> out;
        if (s.getType() == Setting::TypeString) {
            out.push_back(readNonEmptyString(s));
            return out;
        }
        if (!s.isArray() && !s.isList()) {
            fail(s, quoted(s.getPath()) + " must be a string or a list of strings");
        }
        for (const Setting& item : s) {
            if (item.getType() != Setting::TypeString) {
                fail(item, quoted(s.getPath()) + " must hold only strings");
            }
            const std::string value = item.c_str();
            if (value.empty()) {
                fail(item, quoted(s.getPath()) + " must not hold empty strings");
            }
            out.push_back(value);
        }
        if (out.empty()) {
            fail(s, quoted(s.getPath()) + " must not be empty");
        }
        return out;
    }

    // Calls `apply` for `key` in `group` when present.
    void optional(const Setting& group, const char* key,
                  const std::function<void(const Setting&)>& apply) const {
        if (group.exists(key)) {
            apply(group[key]);
        }
    }

private:
    static std::vector<std::string> splitLines(const std::string& text) {
        std::vector<std::string> lines;
        std::istringstream in(text);
        std::string line;
        while (std::getline(in, line)) {
            lines.push_back(line);
        }
        return lines;
    }

    const std::vector<std::string>* sourceLines(const std::string& file) const {
        auto it = sources_.find(file);
        if (it == sources_.end()) {
            std::ifstream in(file);
            std::ostringstream text;
            text << in.rdbuf();
            it = sources_.emplace(file, splitLines(in ? text.str() : std::string())).first;
        }
        return &it->second;
    }

    // libconfig 1.5 stores an integer literal without the L suffix as a 32-bit int and wraps
    // silently (5000000000 reads as 705032704).  Re-read the literal from the source line and
    // refuse one that cannot be a plain int (unless it carries the L suffix).
    void checkNoWrap(const Setting& s) const {
        const char* name = s.getName();
        const unsigned lineNo = s.getSourceLine();
        if (name == nullptr || lineNo == 0) {
            return;
        }
        const auto* lines = sourceLines(fileOf(s));
        if (lineNo > lines->size()) {
            return;
        }
        const std::string& line = (*lines)[lineNo - 1];
        const std::string key(name);
        for (std::size_t at = line.find(key); at != std::string::npos;
             at = line.find(key, at + 1)) {
            if (at > 0 && (std::isalnum(static_cast<unsigned char>(line[at - 1])) ||
                           line[at - 1] == '_' || line[at - 1] == '-' || line[at - 1] == '*')) {
                continue;  // the end of a longer name ("transport" is not "port")
            }
            std::size_t p = at + key.size();
            while (p < line.size() && (line[p] == ' ' || line[p] == '\t')) {
                ++p;
            }
            if (p >= line.size() || (line[p] != '=' && line[p] != ':')) {
                continue;
            }
            ++p;
            while (p < line.size() && (line[p] == ' ' || line[p] == '\t')) {
                ++p;
            }
            const char* start = line.c_str() + p;
            const bool hex = line.compare(p, 2, "0x") == 0 || line.compare(p, 2, "0X") == 0;
            char* end = nullptr;
            errno = 0;
            const long long literal = hex ? static_cast<long long>(std::strtoull(start, &end, 16))
                                          : std::strtoll(start, &end, 10);
            if (end == start) {
                continue;
            }
            const bool fits = errno != ERANGE &&
                              (hex ? literal >= 0 && literal <= 0xffffffffLL
                                   : literal >= INT_MIN && literal <= INT_MAX);
            // Several settings of the same name may share a line (a one-line listen list):
            // only a literal that cannot be a plain int is the wrapped one.
            const bool int64Literal = *end == 'L' || *end == 'l';
            if (!fits && !int64Literal) {
                fail(s, quoted(s.getPath()) +
                            " is too large for a plain integer; write it with an L suffix "
                            "(e.g. 5000000000L)");
            }
            return;
        }
    }

    std::string name_;
    mutable std::map<std::string, std::vector<std::string>> sources_;
};

void readListener(const Reader& r, const Setting& s, ListenerConfig& out) {
    if (!s.isGroup()) {
        r.fail(s, "each entry of 'listen' must be a group { address = ...; port = ...; }");
    }
    r.checkKeys(s, {"address", "port", "tls", "transparent"});
    if (!s.exists("address")) {
        r.fail(s, "missing required setting " + quoted(s.getPath() + ".address"));
    }
    if (!s.exists("port")) {
        r.fail(s, "missing required setting " + quoted(s.getPath() + ".port"));
    }
    out.address = r.readNonEmptyString(s["address"]);
    unsigned char probe[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, out.address.c_str(), probe) != 1 &&
        inet_pton(AF_INET6, out.address.c_str(), probe) != 1) {
        // Resolving a name here would make the bound address depend on DNS at start-up.
        r.fail(s["address"], quoted(s.getPath() + ".address") +
                                 " must be a numeric IPv4 or IPv6 address (\"0.0.0.0\", \"::\", …)");
    }
    out.port = static_cast<int>(r.readInteger(s["port"], 1, 65535));
    r.optional(s, "tls", [&](const Setting& v) {
        out.tls = r.readEnum<ListenerTls>(
            v, {{"starttls", ListenerTls::StartTls}, {"implicit", ListenerTls::Implicit}});
    });
    r.optional(s, "transparent", [&](const Setting& v) { out.transparent = r.readBool(v); });
}

void readListen(const Reader& r, const Setting& s, Config& config) {
    if (!s.isList() && !s.isArray()) {
        r.fail(s, "'listen' must be a list of groups: listen = ( { address = ...; port = ...; } )");
    }
    for (const Setting& item : s) {
        ListenerConfig listener;
        readListener(r, item, listener);
        config.listeners.push_back(listener);
    }
    if (config.listeners.empty()) {
        r.fail(s, "'listen' must hold at least one listener");
    }
}

void readTls(const Reader& r, const Setting& s, TlsConfig& out) {
    r.requireGroup(s);
    r.checkKeys(s, {"cert", "key", "ciphers"});
    r.optional(s, "cert", [&](const Setting& v) { out.cert = r.readNonEmptyString(v); });
    r.optional(s, "key", [&](const Setting& v) { out.key = r.readNonEmptyString(v); });
    r.optional(s, "ciphers", [&](const Setting& v) { out.ciphers = r.readString(v); });
}

std::vector<std::string> readMechanisms(const Reader& r, const Setting& s) {
    if (!s.isArray() && !s.isList()) {
        r.fail(s, quoted(s.getPath()) + " must be an array of strings, e.g. [ \"PLAIN\", \"LOGIN\" ]");
    }
    std::vector<std::string> out;
    for (const std::string& name : r.readStringList(s)) {
        const std::string upper = toUpper(name);
        if (upper != "PLAIN" && upper != "LOGIN" && upper != "CRAM-MD5") {
            r.fail(s, "invalid mechanism \"" + printable(name) + "\" in " + quoted(s.getPath()) +
                          ": expected \"PLAIN\", \"LOGIN\" or \"CRAM-MD5\"");
        }
        bool seen = false;
        for (const std::string& m : out) {
            seen = seen || m == upper;
        }
        if (!seen) {
            out.push_back(upper);
        }
    }
    return out;
}

void readAuth(const Reader& r, const Setting& s, AuthConfig& out) {
    r.requireGroup(s);
    r.checkKeys(s, {"backend", "mechanisms", "sasl_service", "sasl_config_dir", "sasl_realm",
                    "workers", "max_workers", "timeout"});
    r.optional(s, "backend", [&](const Setting& v) {
        out.backend = r.readEnum<AuthBackend>(
            v, {{"sasl", AuthBackend::Sasl}, {"upstream", AuthBackend::Upstream}});
    });
    r.optional(s, "mechanisms", [&](const Setting& v) { out.mechanisms = readMechanisms(r, v); });
    r.optional(s, "sasl_service",
               [&](const Setting& v) { out.saslService = r.readNonEmptyString(v); });
    r.optional(s, "sasl_config_dir",
               [&](const Setting& v) { out.saslConfigDir = r.readNonEmptyString(v); });
    r.optional(s, "sasl_realm", [&](const Setting& v) { out.saslRealm = r.readString(v); });
    r.optional(s, "workers", [&](const Setting& v) { out.workers = r.readPositiveInt(v); });
    r.optional(s, "max_workers", [&](const Setting& v) { out.maxWorkers = r.readPositiveInt(v); });
    r.optional(s, "timeout", [&](const Setting& v) { out.timeout = r.readPositiveInt(v); });
    if (out.maxWorkers < out.workers) {
        r.fail(s.exists("max_workers") ? s["max_workers"] : s,
               "'auth.max_workers' (" + std::to_string(out.maxWorkers) +
                   ") must not be smaller than 'auth.workers' (" + std::to_string(out.workers) +
                   ")");
    }
}

void readUpstream(const Reader& r, const Setting& s, UpstreamConfig& out) {
    r.requireGroup(s);
    r.checkKeys(s, {"host", "port", "tls", "verify", "ca_file", "server_name", "login",
                    "helo_name", "connect_timeout", "reply_timeout", "data_done_timeout"});
    r.optional(s, "host", [&](const Setting& v) { out.hosts = r.readStringList(v); });
    r.optional(s, "port",
               [&](const Setting& v) { out.port = static_cast<int>(r.readInteger(v, 1, 65535)); });
    r.optional(s, "tls", [&](const Setting& v) {
        out.tls = r.readEnum<UpstreamTls>(v, {{"starttls", UpstreamTls::StartTls},
                                              {"implicit", UpstreamTls::Implicit},
                                              {"none", UpstreamTls::None}});
    });
    r.optional(s, "verify", [&](const Setting& v) { out.verify = r.readBool(v); });
    r.optional(s, "ca_file", [&](const Setting& v) { out.caFile = r.readString(v); });
    r.optional(s, "server_name", [&](const Setting& v) { out.serverName = r.readString(v); });
    r.optional(s, "login", [&](const Setting& v) {
        out.login = r.readEnum<UpstreamLogin>(v, {{"xclient", UpstreamLogin::Xclient},
                                                  {"replay", UpstreamLogin::Replay},
                                                  {"none", UpstreamLogin::None}});
    });
    r.optional(s, "helo_name", [&](const Setting& v) { out.heloName = r.readString(v); });
    r.optional(s, "connect_timeout",
               [&](const Setting& v) { out.connectTimeout = r.readPositiveInt(v); });
    r.optional(s, "reply_timeout",
               [&](const Setting& v) { out.replyTimeout = r.readPositiveInt(v); });
    r.optional(s, "data_done_timeout",
               [&](const Setting& v) { out.dataDoneTimeout = r.readPositiveInt(v); });
}

void readLimits(const Reader& r, const Setting& s, Limits& out) {
    r.requireGroup(s);
    r.checkKeys(s, {"max_sessions", "command_line_length", "auth_line_length", "max_errors",
                    "max_auth_failures", "greeting_timeout", "command_timeout", "data_timeout",
                    "tls_handshake_timeout", "max_message_size", "max_pipelined",
                    "shutdown_grace"});
    const std::pair<const char*, int*> ints[] = {
        {"max_sessions", &out.maxSessions},
        {"command_line_length", &out.commandLineLength},
        {"auth_line_length", &out.authLineLength},
        {"max_errors", &out.maxErrors},
        {"max_auth_failures", &out.maxAuthFailures},
        {"greeting_timeout", &out.greetingTimeout},
        {"command_timeout", &out.commandTimeout},
        {"data_timeout", &out.dataTimeout},
        {"tls_handshake_timeout", &out.tlsHandshakeTimeout},
        {"max_pipelined", &out.maxPipelined},
        {"shutdown_grace", &out.shutdownGrace},
    };
    for (const auto& [key, target] : ints) {
        int* field = target;
        r.optional(s, key, [&](const Setting& v) { *field = r.readPositiveInt(v); });
    }
    r.optional(s, "max_message_size", [&](const Setting& v) {
        out.maxMessageSize = static_cast<std::uint64_t>(r.readInteger(v, 1, LLONG_MAX));
    });
    if (out.authLineLength < out.commandLineLength) {
        r.fail(s.exists("auth_line_length") ? s["auth_line_length"] : s,
               "'limits.auth_line_length' (" + std::to_string(out.authLineLength) +
                   ") must not be smaller than 'limits.command_line_length' (" +
                   std::to_string(out.commandLineLength) + ")");
    }
}

void readReplies(const Reader& r, const Setting& s, Replies& out) {
    r.requireGroup(s);
    r.checkKeys(s, {"auth_required", "tls_required"});
    r.optional(s, "auth_required", [&](const Setting& v) { out.authRequired = r.readLineText(v); });
    r.optional(s, "tls_required", [&](const Setting& v) { out.tlsRequired = r.readLineText(v); });
}

// Deployment keys (issue 4): pid_file, user, group, status { }, migration { }.
void readDeployment(const Reader& r, const Setting& root, Config& config) {
    r.optional(root, "pid_file", [&](const Setting& v) { config.daemon.pidFile = r.readNonEmptyString(v); });
    r.optional(root, "user", [&](const Setting& v) { config.daemon.user = r.readLineText(v); });
    r.optional(root, "group", [&](const Setting& v) { config.daemon.group = r.readLineText(v); });
    r.optional(root, "status", [&](const Setting& s) {
        r.requireGroup(s);
        r.checkKeys(s, {"address", "port"});
        StatusConfig& out = config.status;
        out.enabled = true;
        r.optional(s, "address", [&](const Setting& v) {
            out.address = r.readNonEmptyString(v);
            unsigned char probe[sizeof(struct in6_addr)];
            if (inet_pton(AF_INET, out.address.c_str(), probe) != 1 &&
                inet_pton(AF_INET6, out.address.c_str(), probe) != 1) {
                r.fail(v, "'status.address' must be a numeric IPv4 or IPv6 address (\"127.0.0.1\", \"::1\")");
            }
        });
        r.optional(s, "port", [&](const Setting& v) { out.port = static_cast<int>(r.readInteger(v, 1, 65535)); });
    });
    r.optional(root, "migration", [&](const Setting& s) {
        r.requireGroup(s);
        r.checkKeys(s, {"state_file", "max_entries", "flush_interval", "notice"});
        MigrationConfig& out = config.migration;
        r.optional(s, "state_file", [&](const Setting& v) { out.stateFile = r.readNonEmptyString(v); });
        r.optional(s, "max_entries",
                   [&](const Setting& v) { out.maxEntries = static_cast<int>(r.readInteger(v, 1, 10000000)); });
        r.optional(s, "flush_interval",
                   [&](const Setting& v) { out.flushInterval = static_cast<int>(r.readInteger(v, 1, 86400)); });
        // Goes on the wire inside a reply: one printable line, and short enough for one.
        r.optional(s, "notice", [&](const Setting& v) {
            out.notice = r.readLineText(v);
            if (out.notice.size() > 400) {
                r.fail(v, "'migration.notice' must be at most 400 characters (one SMTP reply line)");
            }
        });
    });
}

// A DNSBL reply template: one printable line with only the known placeholders.
std::string readDnsblReply(const Reader& r, const Setting& v) {
    const std::string text = r.readLineText(v);
    std::string error;
    if (!validDnsblTemplate(text, &error)) {
        r.fail(v, quoted(v.getPath()) + ": " + error);
    }
    return text;
}

std::string toLowerZone(std::string zone) {
    for (char& c : zone) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    while (!zone.empty() && zone.back() == '.') {
        zone.pop_back();  // "zen.spamhaus.org." is the same zone
    }
    return zone;
}

// Spambot trap and connection filtering (issue 3, items 2 and 3): trap { }, access { },
// dnsbl { }.
void readTrap(const Reader& r, const Setting& s, TrapConfig& out) {
    r.requireGroup(s);
    r.checkKeys(s, {"greet_wait", "greet_cache_ttl", "greet_cache_size", "pregreet", "no_auth", "fanout", "non_smtp", "bare_newline", "dnsbl",
                    "fanout_limit", "fanout_window", "fanout_max_clients", "tarpit_interval_ms", "tarpit_bytes",
                    "tarpit_max", "tarpit_max_time"});
    for (int i = 0; i < kTrapSignals; ++i) {
        const auto signal = static_cast<TrapSignal>(i);
        r.optional(s, trapSignalName(signal), [&](const Setting& v) {
            const std::string text = r.readString(v);
            if (!parseTrapAction(text, out.actions[i])) {
                r.fail(v, "invalid value \"" + printable(text) + "\" for " + quoted(v.getPath()) +
                              ": expected one of \"ignore\", \"log\", \"tarpit\", \"reject\", \"ban\"");
            }
        });
    }
    const std::pair<const char*, std::pair<int*, int>> ints[] = {
        {"greet_wait", {&out.greetWaitMs, 60}},  // read in seconds below
        {"greet_cache_ttl", {&out.greetCacheTtl, 30 * 86400}},
        {"greet_cache_size", {&out.greetCacheSize, 10000000}},
        {"fanout_limit", {&out.fanoutLimit, 100000}},
        {"fanout_window", {&out.fanoutWindow, 7 * 86400}},
        {"fanout_max_clients", {&out.fanoutMaxClients, 10000000}},
        {"tarpit_interval_ms", {&out.tarpitIntervalMs, 60000}},
        {"tarpit_bytes", {&out.tarpitBytes, 512}},
        {"tarpit_max", {&out.tarpitMax, 1000000}},
        {"tarpit_max_time", {&out.tarpitMaxTime, 86400}},
    };
    for (const auto& [key, target] : ints) {
        const auto field = target;
        const std::string name(key);
        const long long min = name == "greet_wait" || name == "tarpit_max" || name == "greet_cache_ttl" ? 0 : 1;
        r.optional(s, key, [&](const Setting& v) { *field.first = static_cast<int>(r.readInteger(v, min, field.second)); });
    }
    out.greetWaitMs *= 1000;
}

std::vector<std::string> readCidrs(const Reader& r, const Setting& s, CidrList& out) {
    std::vector<std::string> texts;
    if (s.getType() == Setting::TypeString || s.isArray() || s.isList()) {
        if ((s.isArray() || s.isList()) && s.getLength() == 0) {
            return texts;  // an empty list is fine: nothing listed
        }
        texts = r.readStringList(s);
    } else {
        r.fail(s, quoted(s.getPath()) + " must be a list of addresses or CIDR blocks");
    }
    for (const auto& text : texts) {
        if (!out.add(text)) {
            r.fail(s, "invalid address or CIDR block \"" + printable(text) + "\" in " + quoted(s.getPath()));
        }
    }
    return texts;
}

std::string besideConfig(const std::string& configFile, const std::string& path) {
    if (path.empty() || path[0] == '/') {
        return path;
    }
    const std::size_t slash = configFile.rfind('/');
    return (slash == std::string::npos ? std::string(".") : configFile.substr(0, slash)) + "/" + path;
}

void readAccess(const Reader& r, const Setting& s, AccessConfig& out) {
    r.requireGroup(s);
    r.checkKeys(s, {"allow", "deny", "allow_file", "deny_file"});
    r.optional(s, "allow", [&](const Setting& v) { readCidrs(r, v, out.allow); });
    r.optional(s, "deny", [&](const Setting& v) { readCidrs(r, v, out.deny); });
    // The files are read now, so SIGHUP (which re-reads the configuration) reloads them and
    // a bad line keeps the running lists.
    for (auto [key, file, list] : {std::tuple{"allow_file", &out.allowFile, &out.allow},
                                   std::tuple{"deny_file", &out.denyFile, &out.deny}}) {
        r.optional(s, key, [&, file = file, list = list](const Setting& v) {
            *file = besideConfig(r.fileOf(v), r.readNonEmptyString(v));
            int line = 0;
            std::string error;
            if (!loadCidrFile(*file, *list, line, error)) {
                if (line > 0) {
                    throw ConfigError(*file, line, error);
                }
                r.fail(v, quoted(v.getPath()) + ": " + error);
            }
        });
    }
}

void readDnsblZone(const Reader& r, const Setting& s, DnsblZone& out) {
    if (!s.isGroup()) {
        r.fail(s, "each entry of 'dnsbl.zones' must be a group { zone = \"...\"; ... }");
    }
    r.checkKeys(s, {"zone", "name", "filter", "bitmask", "weight", "reply"});
    if (!s.exists("zone")) {
        r.fail(s, "missing required setting " + quoted(s.getPath() + ".zone"));
    }
    out.zone = toLowerZone(r.readLineText(s["zone"]));
    for (char c : out.zone) {
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_')) {
            r.fail(s["zone"], quoted(s.getPath() + ".zone") + " must be a DNS name like \"zen.spamhaus.org\"");
        }
    }
    out.name = out.zone;
    r.optional(s, "name", [&](const Setting& v) { out.name = r.readLineText(v); });
    r.optional(s, "filter", [&](const Setting& v) {
        for (const std::string& text : r.readStringList(v)) {
            std::string error;
            auto pattern = parseAnswerPattern(text, &error);
            if (!pattern) {
                r.fail(v, "invalid filter \"" + printable(text) + "\" in " + quoted(v.getPath()) + ": " + error);
            }
            out.filters.push_back(*pattern);
            out.filterText.push_back(text);
        }
    });
    r.optional(s, "bitmask", [&](const Setting& v) { out.bitmask = static_cast<std::uint32_t>(r.readInteger(v, 1, 255)); });
    r.optional(s, "weight", [&](const Setting& v) { out.weight = static_cast<int>(r.readInteger(v, -1000, 1000)); });
    r.optional(s, "reply", [&](const Setting& v) { out.reply = readDnsblReply(r, v); });
}

void readDnsbl(const Reader& r, const Setting& s, DnsblConfig& out) {
    r.requireGroup(s);
    r.checkKeys(s, {"zones", "threshold", "allowlist_threshold", "decision", "block_authenticated", "nameserver",
                    "timeout", "negative_ttl", "max_ttl", "cache_size", "reply"});
    r.optional(s, "zones", [&](const Setting& v) {
        if (!v.isList() && !v.isArray()) {
            r.fail(v, "'dnsbl.zones' must be a list of groups: zones = ( { zone = \"...\"; } )");
        }
        for (const Setting& item : v) {
            DnsblZone zone;
            readDnsblZone(r, item, zone);
            out.zones.push_back(zone);
        }
    });
    r.optional(s, "threshold", [&](const Setting& v) { out.threshold = static_cast<int>(r.readInteger(v, 1, 100000)); });
    r.optional(s, "allowlist_threshold", [&](const Setting& v) {
        out.allowlistEnabled = true;
        out.allowlistThreshold = static_cast<int>(r.readInteger(v, -100000, 0));
    });
    r.optional(s, "decision", [&](const Setting& v) {
        out.decision = r.readEnum<DnsblDecision>(v, {{"connect", DnsblDecision::Connect}, {"mail", DnsblDecision::Mail}});
    });
    r.optional(s, "block_authenticated", [&](const Setting& v) { out.blockAuthenticated = r.readBool(v); });
    r.optional(s, "nameserver", [&](const Setting& v) {
        out.nameservers = r.readStringList(v);
        for (const std::string& ns : out.nameservers) {
            // "1.2.3.4", "1.2.3.4:5353", "::1", "[::1]:5353"
            std::string host = ns;
            long port = 53;
            const auto colon = ns.rfind(':');
            if (!ns.empty() && ns[0] == '[') {
                const auto close = ns.find(']');
                host = ns.substr(1, close == std::string::npos ? 0 : close - 1);
                if (close != std::string::npos && close + 1 < ns.size()) {
                    port = ns[close + 1] == ':' ? std::strtol(ns.c_str() + close + 2, nullptr, 10) : -1;
                }
            } else if (colon != std::string::npos && ns.find(':') == colon) {
                host = ns.substr(0, colon);
                port = std::strtol(ns.c_str() + colon + 1, nullptr, 10);
            }
            if (!parseIpAddress(host) || port < 1 || port > 65535) {
                r.fail(v, "invalid nameserver \"" + printable(ns) + "\" in 'dnsbl.nameserver': expected a numeric "
                          "address with an optional port (\"127.0.0.1:5353\", \"[::1]:53\")");
            }
        }
    });
    r.optional(s, "timeout", [&](const Setting& v) { out.timeout = static_cast<int>(r.readInteger(v, 1, 60)); });
    r.optional(s, "negative_ttl", [&](const Setting& v) { out.negativeTtl = static_cast<int>(r.readInteger(v, 0, 86400)); });
    r.optional(s, "max_ttl", [&](const Setting& v) { out.maxTtl = static_cast<int>(r.readInteger(v, 0, 7 * 86400)); });
    r.optional(s, "cache_size", [&](const Setting& v) { out.cacheSize = static_cast<int>(r.readInteger(v, 1, 10000000)); });
    r.optional(s, "reply", [&](const Setting& v) { out.reply = readDnsblReply(r, v); });
}

void readAbuseDefence(const Reader& r, const Setting& root, Config& config) {
    r.optional(root, "trap", [&](const Setting& v) { readTrap(r, v, config.trap); });
    r.optional(root, "access", [&](const Setting& v) { readAccess(r, v, config.access); });
    r.optional(root, "dnsbl", [&](const Setting& v) { readDnsbl(r, v, config.dnsbl); });
}

// Password guessers and per-address limits (issue 3 items 1 and 4): the "guard" group.
double readSeconds(const Reader& r, const Setting& v, double max) {
    double value = 0;
    if (v.getType() == Setting::TypeFloat) {
        value = static_cast<double>(v);
    } else if (v.getType() != Setting::TypeInt && v.getType() != Setting::TypeInt64) {
        r.fail(v, quoted(v.getPath()) + " must be a number of seconds (2, 0.5)");
    } else {
        value = static_cast<double>(r.readInteger(v, 0, static_cast<long long>(max)));
    }
    if (!(value >= 0 && value <= max)) {
        r.fail(v, quoted(v.getPath()) + " must be a number of seconds between 0 and " + std::to_string(static_cast<long long>(max)));
    }
    return value;
}

void readGuard(const Reader& r, const Setting& s, GuardConfig& out) {
    r.requireGroup(s);
    r.checkKeys(s, {"trusted_networks", "ipv6_prefix", "auth_delay", "auth_delay_max", "failure_window",
                    "ban_threshold", "ban_time", "ban_action", "max_tracked", "state_file", "state_interval",
                    "control_socket", "max_sessions_per_client", "connection_rate", "connection_rate_window"});
    GuardPolicy& p = out.policy;
    r.optional(s, "trusted_networks", [&](const Setting& v) {
        for (const std::string& text : r.readStringList(v)) {
            if (!out.trusted.add(text)) {
                r.fail(v, "'guard.trusted_networks': \"" + printable(text) +
                              "\" is not an address or CIDR block (\"192.0.2.0/24\", \"2001:db8::/32\")");
            }
        }
    });
    r.optional(s, "ipv6_prefix", [&](const Setting& v) { p.ipv6Prefix = static_cast<unsigned>(r.readInteger(v, 16, 128)); });
    r.optional(s, "auth_delay", [&](const Setting& v) { p.delayBase = readSeconds(r, v, 300); });
    r.optional(s, "auth_delay_max", [&](const Setting& v) { p.delayMax = readSeconds(r, v, 300); });
    r.optional(s, "failure_window", [&](const Setting& v) { p.window = r.readInteger(v, 1, 30LL * 86400); });
    r.optional(s, "ban_threshold", [&](const Setting& v) { p.banThreshold = static_cast<unsigned>(r.readInteger(v, 0, 1000000)); });
    r.optional(s, "ban_time", [&](const Setting& v) { p.banTime = r.readInteger(v, 1, 365LL * 86400); });
    r.optional(s, "ban_action", [&](const Setting& v) {
        out.banClose = r.readEnum<bool>(v, {{"reply", false}, {"close", true}});
    });
    r.optional(s, "max_tracked", [&](const Setting& v) { p.maxTracked = static_cast<std::size_t>(r.readInteger(v, 1, 10000000)); });
    r.optional(s, "state_file", [&](const Setting& v) { out.stateFile = r.readNonEmptyString(v); });
    r.optional(s, "state_interval", [&](const Setting& v) { out.stateInterval = static_cast<int>(r.readInteger(v, 1, 86400)); });
    r.optional(s, "control_socket", [&](const Setting& v) {
        out.controlSocket = r.readNonEmptyString(v);
        if (out.controlSocket.size() >= 100) {  // sun_path is 108 bytes, with the config dir prepended
            r.fail(v, "'guard.control_socket' must be shorter than 100 characters");
        }
    });
    r.optional(s, "max_sessions_per_client", [&](const Setting& v) { out.maxSessionsPerClient = static_cast<int>(r.readInteger(v, 0, INT_MAX)); });
    r.optional(s, "connection_rate", [&](const Setting& v) { out.connectionRate = static_cast<int>(r.readInteger(v, 0, INT_MAX)); });
    r.optional(s, "connection_rate_window", [&](const Setting& v) { out.connectionRateWindow = static_cast<int>(r.readInteger(v, 1, 86400)); });
    if (p.delayMax < p.delayBase) {
        r.fail(s.exists("auth_delay_max") ? s["auth_delay_max"] : s,
               "'guard.auth_delay_max' must not be smaller than 'guard.auth_delay'");
    }
}

std::string defaultHostname() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') {
        return "localhost";
    }
    return buf;
}

// Rules that involve more than one setting.
void checkCombinations(const Reader& r, const Setting& root, Config& config,
                       const std::string& name) {
    const bool mechanismsSet = root.exists("auth") && root["auth"].exists("mechanisms");
    const bool replay = config.upstream.login == UpstreamLogin::Replay;
    auto& mechs = config.auth.mechanisms;
    if (replay && !mechanismsSet) {
        // The default list offers CRAM-MD5, which replay cannot serve: quietly leave it out
        // rather than fail a configuration that never asked for it.
        std::vector<std::string> kept;
        for (const std::string& m : mechs) {
            if (m != "CRAM-MD5") {
                kept.push_back(m);
            }
        }
        mechs = kept;
    }
    if (replay && config.auth.backend == AuthBackend::Sasl) {
        for (const std::string& m : mechs) {
            if (m == "CRAM-MD5") {
                r.fail(root["auth"]["mechanisms"],
                       "CRAM-MD5 cannot be replayed to the MSA; remove it from "
                       "auth.mechanisms or use login = \"xclient\"");
            }
        }
    }
    if (config.upstream.login == UpstreamLogin::None && config.auth.backend == AuthBackend::Sasl) {
        // The MSA would get sessions that carry no customer identity at all: it could only
        // accept them by trusting our address, which turns any desync into an open relay.
        r.fail(root["upstream"]["login"],
               "login = \"none\" with auth.backend = \"sasl\" hands the MSA anonymous sessions; "
               "use \"xclient\" or \"replay\"");
    }
    if (replay && config.auth.backend == AuthBackend::Upstream) {
        r.fail(root["upstream"]["login"],
               "login = \"replay\" cannot be used with auth.backend = \"upstream\" (the MSA "
               "already sees the customer's own AUTH)");
    }
    if (!root.exists("tls")) {
        throw ConfigError(name, 0,
                          "missing required group 'tls' (tls = { cert = \"...\"; key = \"...\"; })");
    }
    if (config.tls.cert.empty()) {
        r.fail(root["tls"], "missing required setting 'tls.cert'");
    }
    if (config.tls.key.empty()) {
        r.fail(root["tls"], "missing required setting 'tls.key'");
    }
}

Config buildConfig(const libconfig::Config& cfg, const std::string& name,
                   const std::string& text) {
    const Reader r(name, text);
    const Setting& root = cfg.getRoot();
    Config config;
    config.file = name;
    r.checkKeys(root, {"hostname", "listen", "tls", "auth", "upstream", "limits", "replies",
                       "data_bare_newline", "log_facility",
                       "pid_file", "user", "group", "status", "migration",
                       "guard",
                       "trap", "access", "dnsbl"});
    config.hostname = root.exists("hostname") ? r.readLineText(root["hostname"]) : defaultHostname();
    if (!root.exists("listen")) {
        throw ConfigError(name, 0, "missing required setting 'listen'");
    }
    readListen(r, root["listen"], config);
    r.optional(root, "tls", [&](const Setting& v) { readTls(r, v, config.tls); });
    r.optional(root, "auth", [&](const Setting& v) { readAuth(r, v, config.auth); });
    r.optional(root, "upstream", [&](const Setting& v) { readUpstream(r, v, config.upstream); });
    r.optional(root, "limits", [&](const Setting& v) { readLimits(r, v, config.limits); });
    r.optional(root, "replies", [&](const Setting& v) { readReplies(r, v, config.replies); });
    r.optional(root, "data_bare_newline", [&](const Setting& v) {
        config.dataBareNewline = r.readEnum<BareNewline>(
            v, {{"reject", BareNewline::Reject}, {"normalize", BareNewline::Normalize}});
    });
    r.optional(root, "log_facility", [&](const Setting& v) {
        const std::string facility = r.readString(v);
        if (syslogFacility(facility) < 0) {
            r.fail(v, "invalid value \"" + printable(facility) +
                          "\" for 'log_facility': expected one of \"mail\", \"daemon\", "
                          "\"user\", \"auth\", \"authpriv\", \"local0\" .. \"local7\"");
        }
        config.logFacility = facility;
    });
    readDeployment(r, root, config);
    r.optional(root, "guard", [&](const Setting& v) { readGuard(r, v, config.guard); });
    readAbuseDefence(r, root, config);
    checkCombinations(r, root, config, name);
    return config;
}

// Any libconfig exception we did not anticipate still becomes a ConfigError.
template <typename Body>
Config withConfigErrors(const std::string& name, Body body) {
    try {
        return body();
    } catch (const libconfig::ParseException& e) {
        const char* file = e.getFile();
        throw ConfigError(file != nullptr ? file : name, e.getLine(), e.getError());
    } catch (const libconfig::SettingException& e) {
        throw ConfigError(name, 0, std::string("setting '") + e.getPath() + "': " + e.what());
    } catch (const libconfig::FileIOException&) {
        throw ConfigError(name, 0, "cannot read configuration file (or an @include)");
    }
}

std::string directoryOf(const std::string& path) {
    const std::size_t slash = path.rfind('/');
    if (slash == std::string::npos) {
        return ".";
    }
    return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

ConfigError::ConfigError(std::string fileName, int lineNo, const std::string& message)
    : std::runtime_error(formatWhat(fileName, lineNo, message)),
      file(std::move(fileName)),
      line(lineNo) {}

Config loadConfig(const std::string& path) {
    // FileIOException says nothing about why; ask the file system ourselves first.
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        const int err = errno;
        throw ConfigError(path, 0,
                          std::string("cannot read configuration file: ") + std::strerror(err));
    }
    std::ostringstream text;
    text << in.rdbuf();
    return withConfigErrors(path, [&] {
        libconfig::Config cfg;
        cfg.setIncludeDir(directoryOf(path).c_str());
        cfg.readFile(path.c_str());
        Config config = buildConfig(cfg, path, text.str());
        // Relative paths are relative to the configuration file, not to wherever the daemon
        // runs (it changes to / when it goes to the background).
        for (std::string* file : {&config.tls.cert, &config.tls.key, &config.upstream.caFile,
                                  &config.auth.saslConfigDir, &config.daemon.pidFile,
                                  &config.migration.stateFile,
                                  &config.guard.stateFile, &config.guard.controlSocket}) {
            if (!file->empty() && (*file)[0] != '/') {
                *file = directoryOf(path) + "/" + *file;
            }
        }
        return config;
    });
}

Config parseConfig(const std::string& text, const std::string& name) {
    return withConfigErrors(name, [&] {
        libconfig::Config cfg;
        cfg.readString(text);
        return buildConfig(cfg, name, text);
    });
}

std::string settingLocation(const std::string& file, const std::string& path) {
    try {
        libconfig::Config cfg;
        cfg.setIncludeDir(directoryOf(file).c_str());
        cfg.readFile(file.c_str());
        if (cfg.exists(path)) {
            const Setting& s = cfg.lookup(path);
            const char* source = s.getSourceFile();
            return std::string(source ? source : file.c_str()) + ":" + std::to_string(s.getSourceLine());
        }
    } catch (const std::exception&) {
    }
    return file;
}

int syslogFacility(const std::string& name) {
    static const std::pair<const char*, int> kFacilities[] = {
        {"mail", LOG_MAIL},     {"daemon", LOG_DAEMON}, {"user", LOG_USER},
        {"auth", LOG_AUTH},     {"authpriv", LOG_AUTHPRIV}, {"local0", LOG_LOCAL0},
        {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3},
        {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6},
        {"local7", LOG_LOCAL7},
    };
    for (const auto& [facilityName, value] : kFacilities) {
        if (iequals(name, facilityName)) {
            return value;
        }
    }
    return -1;
}

}  // namespace subproxy
