// Reading and validating the libconfig configuration.  Every check names FILE:LINE and the
// key path, because an operator running `subproxy -t` must be able to fix the file without
// reading our source.  Defaults live in config.h's member initialisers.  The core groups are
// read here; config_deploy.cpp and config_defence.cpp read the others.
#include "ops/config.h"

#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <vector>

#include "ops/config_duplicates.h"
#include "ops/config_reader.h"
#include "wire/text_util.h"

namespace subproxy {

namespace {

using namespace config_detail;

void readListener(const Reader& r, const Setting& s, ListenerConfig& out) {
    if (!s.isGroup()) {
        r.fail(s, "each entry of 'listen' must be a group { address = ...; port = ...; }");
    }
    r.checkKeys(s, {"address", "port", "tls", "transparent", "proxy_protocol", "trusted_proxies"});
    if (!s.exists("address")) {
        r.fail(s, "missing required setting " + quoted(s.getPath() + ".address"));
    }
    if (!s.exists("port")) {
        r.fail(s, "missing required setting " + quoted(s.getPath() + ".port"));
    }
    out.address = r.readNumericAddress(s["address"]);
    out.port = static_cast<int>(r.readInteger(s["port"], 1, 65535));
    r.optional(s, "tls", [&](const Setting& v) {
        out.tls = r.readEnum<ListenerTls>(
            v, {{"starttls", ListenerTls::StartTls}, {"implicit", ListenerTls::Implicit}});
    });
    r.optional(s, "transparent", [&](const Setting& v) { out.transparent = r.readBool(v); });
    r.optional(s, "proxy_protocol", [&](const Setting& v) { out.proxyProtocol = r.readBool(v); });
    r.optional(s, "trusted_proxies", [&](const Setting& v) { readCidrs(r, v, out.trustedProxies); });
    // Trusting every peer would let anyone on the network claim any address: the access list,
    // bans and logs would believe it.  So no default, and no list without the header.
    if (out.proxyProtocol && out.trustedProxies.empty()) {
        r.fail(s, quoted(s.getPath() + ".proxy_protocol") + " needs " + quoted(s.getPath() + ".trusted_proxies") +
                      ": the load balancers' addresses, whose PROXY headers are believed");
    }
    if (!out.proxyProtocol && s.exists("trusted_proxies")) {
        r.fail(s["trusted_proxies"], quoted(s.getPath() + ".trusted_proxies") + " is used only with proxy_protocol = true");
    }
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
    r.checkKeys(s, {"cert", "key", "ciphers", "min_protocol"});
    r.optional(s, "cert", [&](const Setting& v) { out.cert = r.readNonEmptyString(v); });
    r.optional(s, "key", [&](const Setting& v) { out.key = r.readNonEmptyString(v); });
    r.optional(s, "ciphers", [&](const Setting& v) { out.ciphers = r.readString(v); });
    r.optional(s, "min_protocol", [&](const Setting& v) {
        out.minProtocol = r.readEnum<TlsProtocol>(v, {{"TLSv1", TlsProtocol::Tls1_0},
                                                      {"TLSv1.1", TlsProtocol::Tls1_1},
                                                      {"TLSv1.2", TlsProtocol::Tls1_2},
                                                      {"TLSv1.3", TlsProtocol::Tls1_3}});
    });
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
                    "workers", "max_workers", "timeout", "cache_ttl", "cache_size"});
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
    r.optional(s, "cache_ttl", [&](const Setting& v) { out.cacheTtl = static_cast<int>(r.readInteger(v, 0, 86400)); });
    r.optional(s, "cache_size",
               [&](const Setting& v) { out.cacheSize = static_cast<int>(r.readInteger(v, 0, 10000000)); });
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
                    "helo_name", "connect_timeout", "reply_timeout", "data_done_timeout",
                    "probe_interval", "proxy_protocol"});
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
    r.optional(s, "proxy_protocol", [&](const Setting& v) { out.proxyProtocol = r.readBool(v); });
    r.optional(s, "helo_name", [&](const Setting& v) { out.heloName = r.readString(v); });
    r.optional(s, "connect_timeout",
               [&](const Setting& v) { out.connectTimeout = r.readPositiveInt(v); });
    r.optional(s, "reply_timeout",
               [&](const Setting& v) { out.replyTimeout = r.readPositiveInt(v); });
    r.optional(s, "data_done_timeout",
               [&](const Setting& v) { out.dataDoneTimeout = r.readPositiveInt(v); });
    r.optional(s, "probe_interval",
               [&](const Setting& v) { out.probeInterval = static_cast<int>(r.readInteger(v, 0, 86400)); });
}

void readLimits(const Reader& r, const Setting& s, Limits& out) {
    r.requireGroup(s);
    r.checkKeys(s, {"max_sessions", "command_line_length", "auth_line_length", "max_errors",
                    "max_auth_failures", "greeting_timeout", "command_timeout", "data_timeout",
                    "tls_handshake_timeout", "max_message_size", "max_pipelined",
                    "shutdown_grace", "pre_auth_timeout", "stress_threshold", "stress_command_timeout",
                    "stress_pre_auth_timeout", "tls_detect_ms", "proxy_header_timeout"});
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
        {"pre_auth_timeout", &out.preAuthTimeout},
        {"stress_command_timeout", &out.stressCommandTimeout},
        {"stress_pre_auth_timeout", &out.stressPreAuthTimeout},
        {"proxy_header_timeout", &out.proxyHeaderTimeout},
    };
    for (const auto& [key, target] : ints) {
        int* field = target;
        r.optional(s, key, [&](const Setting& v) { *field = r.readPositiveInt(v); });
    }
    r.optional(s, "tls_detect_ms",
               [&](const Setting& v) { out.tlsDetectMs = static_cast<int>(r.readInteger(v, 0, 5000)); });
    r.optional(s, "max_message_size", [&](const Setting& v) {
        out.maxMessageSize = static_cast<std::uint64_t>(r.readInteger(v, 1, LLONG_MAX));
    });
    r.optional(s, "stress_threshold",
               [&](const Setting& v) { out.stressThreshold = static_cast<int>(r.readInteger(v, 1, 100)); });
    if (out.authLineLength < out.commandLineLength) {
        r.fail(s.exists("auth_line_length") ? s["auth_line_length"] : s,
               "'limits.auth_line_length' (" + std::to_string(out.authLineLength) +
                   ") must not be smaller than 'limits.command_line_length' (" +
                   std::to_string(out.commandLineLength) + ")");
    }
}

void readClientName(const Reader& r, const Setting& s, ClientNameConfig& out) {
    r.requireGroup(s);
    r.checkKeys(s, {"lookup", "timeout_ms", "nameserver"});
    r.optional(s, "lookup", [&](const Setting& v) { out.lookup = r.readBool(v); });
    r.optional(s, "timeout_ms", [&](const Setting& v) { out.timeoutMs = static_cast<int>(r.readInteger(v, 100, 30000)); });
    r.optional(s, "nameserver", [&](const Setting& v) { out.nameservers = readNameservers(r, v); });
}

void readReplies(const Reader& r, const Setting& s, Replies& out) {
    r.requireGroup(s);
    r.checkKeys(s, {"auth_required", "tls_required", "auth_failed"});
    const auto text = [&](const Setting& v) {
        std::string value = r.readLineText(v);
        if (value.size() > Replies::kMaxReplyText) {
            r.fail(v, quoted(v.getPath()) + " is " + std::to_string(value.size()) +
                          " characters; a reply line must fit in 512 octets, so at most " +
                          std::to_string(Replies::kMaxReplyText));
        }
        return value;
    };
    r.optional(s, "auth_required", [&](const Setting& v) { out.authRequired = text(v); });
    r.optional(s, "tls_required", [&](const Setting& v) { out.tlsRequired = text(v); });
    r.optional(s, "auth_failed", [&](const Setting& v) { out.authFailed = text(v); });
}

// Deployment keys (issue 4): pid_file, user, group, status { }, migration { }.
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
    if (config.upstream.proxyProtocol && config.upstream.login == UpstreamLogin::Xclient) {
        // The MSA takes the header's address as the client's: Postfix then checks
        // smtpd_authorized_xclient_hosts against the customer, not against the proxy.
        r.fail(root["upstream"].exists("proxy_protocol") ? root["upstream"]["proxy_protocol"] : root["upstream"],
               "proxy_protocol = true cannot be combined with login = \"xclient\" (the MSA would check its "
               "XCLIENT permission against the customer's address); use login = \"replay\", or backend "
               "\"upstream\" with login = \"none\"");
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
                       "data_bare_newline", "log_facility", "log_file", "workers",
                       "pid_file", "user", "group", "status", "migration",
                       "guard", "accounts", "state",
                       "trap", "access", "dnsbl", "client_name"});
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
    r.optional(root, "log_file", [&](const Setting& v) { config.logFile = r.readNonEmptyString(v); });
    r.optional(root, "workers", [&](const Setting& v) { config.workers = static_cast<int>(r.readInteger(v, 1, kMaxWorkers)); });
    readDeployment(r, root, config);
    r.optional(root, "guard", [&](const Setting& v) { readGuard(r, v, config.guard); });
    r.optional(root, "accounts", [&](const Setting& v) { readAccounts(r, v, config.accounts); });
    r.optional(root, "state", [&](const Setting& v) { readState(r, v, config.state); });
    readAbuseDefence(r, root, config);
    r.optional(root, "client_name", [&](const Setting& v) { readClientName(r, v, config.clientName); });
    checkCombinations(r, root, config, name);
    return config;
}

// Any libconfig exception we did not anticipate still becomes a ConfigError.  `text`: the
// configuration's text when it did not come from a file (parseConfig).
template <typename Body>
Config withConfigErrors(const std::string& name, const std::string* text, Body body) {
    try {
        return body();
    } catch (const libconfig::ParseException& e) {
        const char* file = e.getFile();
        const std::string where = file != nullptr ? file : name;
        std::string message = e.getError();
        if (message == "duplicate setting name") {
            std::string source;
            if (text != nullptr && file == nullptr) {
                source = *text;
            } else {
                std::ifstream in(where, std::ios::binary);
                std::ostringstream all;
                all << in.rdbuf();
                source = all.str();
            }
            if (auto named = duplicateSettingMessage(source)) {
                message = *named;
            }
        }
        throw ConfigError(where, e.getLine(), message);
    } catch (const libconfig::SettingException& e) {
        throw ConfigError(name, 0, std::string("setting '") + e.getPath() + "': " + e.what());
    } catch (const libconfig::FileIOException&) {
        throw ConfigError(name, 0, "cannot read configuration file (or an @include)");
    }
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
    return withConfigErrors(path, nullptr, [&] {
        libconfig::Config cfg;
        cfg.setIncludeDir(directoryOf(path).c_str());
        cfg.readFile(path.c_str());
        Config config = buildConfig(cfg, path, text.str());
        // Relative paths are relative to the configuration file, not to wherever the daemon
        // runs (it changes to / when it goes to the background).
        for (std::string* file : {&config.tls.cert, &config.tls.key, &config.upstream.caFile,
                                  &config.auth.saslConfigDir, &config.daemon.pidFile, &config.logFile,
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
    return withConfigErrors(name, &text, [&] {
        libconfig::Config cfg;
        cfg.readString(text);
        return buildConfig(cfg, name, text);
    });
}

namespace {

// Where `path` is set: the file (an @include's, perhaps) and the line; line 0 when absent.
std::pair<std::string, int> settingSource(const std::string& file, const std::string& path) {
    try {
        libconfig::Config cfg;
        cfg.setIncludeDir(directoryOf(file).c_str());
        cfg.readFile(file.c_str());
        if (cfg.exists(path)) {
            const Setting& s = cfg.lookup(path);
            const char* source = s.getSourceFile();
            return {source ? source : file, static_cast<int>(s.getSourceLine())};
        }
    } catch (const std::exception&) {
    }
    return {file, 0};
}

}  // namespace

std::string settingLocation(const std::string& file, const std::string& path) {
    const auto [source, line] = settingSource(file, path);
    return line > 0 ? source + ":" + std::to_string(line) : source;
}

ConfigError settingError(const std::string& file, const std::string& path, const std::string& message) {
    const auto [source, line] = settingSource(file, path);
    return ConfigError(source, line, message);
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
