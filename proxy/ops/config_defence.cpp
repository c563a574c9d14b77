// The abuse-defence groups: trap { }, access { }, dnsbl { } and guard { }.  See config_reader.h.
#include "ops/config_reader.h"

namespace subproxy::config_detail {

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

std::vector<std::string> readNameservers(const Reader& r, const Setting& v) {
    std::vector<std::string> nameservers = r.readStringList(v);
    for (const std::string& ns : nameservers) {
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
            r.fail(v, "invalid nameserver \"" + printable(ns) + "\" in " + quoted(v.getPath()) + ": expected a numeric "
                      "address with an optional port (\"127.0.0.1:5353\", \"[::1]:53\")");
        }
    }
    return nameservers;
}

namespace {

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
    r.optional(s, "nameserver", [&](const Setting& v) { out.nameservers = readNameservers(r, v); });
    r.optional(s, "timeout", [&](const Setting& v) { out.timeout = static_cast<int>(r.readInteger(v, 1, 60)); });
    r.optional(s, "negative_ttl", [&](const Setting& v) { out.negativeTtl = static_cast<int>(r.readInteger(v, 0, 86400)); });
    r.optional(s, "max_ttl", [&](const Setting& v) { out.maxTtl = static_cast<int>(r.readInteger(v, 0, 7 * 86400)); });
    r.optional(s, "cache_size", [&](const Setting& v) { out.cacheSize = static_cast<int>(r.readInteger(v, 1, 10000000)); });
    r.optional(s, "reply", [&](const Setting& v) { out.reply = readDnsblReply(r, v); });
}

}  // namespace

void readAbuseDefence(const Reader& r, const Setting& root, Config& config) {
    r.optional(root, "trap", [&](const Setting& v) { readTrap(r, v, config.trap); });
    r.optional(root, "access", [&](const Setting& v) { readAccess(r, v, config.access); });
    r.optional(root, "dnsbl", [&](const Setting& v) { readDnsbl(r, v, config.dnsbl); });
}

namespace {

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

}  // namespace

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

}  // namespace subproxy::config_detail
