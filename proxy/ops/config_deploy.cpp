// The deployment keys (pid_file, user, group, status { }, migration { }).  See config_reader.h.
#include "ops/config_reader.h"

namespace subproxy::config_detail {

void readDeployment(const Reader& r, const Setting& root, Config& config) {
    r.optional(root, "pid_file", [&](const Setting& v) { config.daemon.pidFile = r.readNonEmptyString(v); });
    r.optional(root, "user", [&](const Setting& v) { config.daemon.user = r.readLineText(v); });
    r.optional(root, "group", [&](const Setting& v) { config.daemon.group = r.readLineText(v); });
    r.optional(root, "status", [&](const Setting& s) {
        r.requireGroup(s);
        r.checkKeys(s, {"address", "port", "socket", "token", "max_connections"});
        StatusConfig& out = config.status;
        out.enabled = true;
        r.optional(s, "address", [&](const Setting& v) { out.address = r.readNumericAddress(v); });
        r.optional(s, "port", [&](const Setting& v) { out.port = static_cast<int>(r.readInteger(v, 1, 65535)); });
        r.optional(s, "socket", [&](const Setting& v) {
            out.socket = r.readNonEmptyString(v);
            if (out.socket.front() != '/' || out.socket.size() >= 100) {
                r.fail(v, "'status.socket' must be an absolute path shorter than 100 characters");
            }
        });
        // Guessable tokens would unlock every customer's login and address: ask for a real one.
        r.optional(s, "token", [&](const Setting& v) {
            out.token = r.readLineText(v);
            if (out.token.size() < 16 || out.token.find_first_of(" \t") != std::string::npos) {
                r.fail(v, "'status.token' must be at least 16 characters without spaces (e.g. openssl rand -hex 16)");
            }
        });
        r.optional(s, "max_connections",
                   [&](const Setting& v) { out.maxConnections = static_cast<int>(r.readInteger(v, 1, 1000)); });
    });
    r.optional(root, "migration", [&](const Setting& s) {
        r.requireGroup(s);
        r.checkKeys(s, {"state_file", "max_entries", "history_days", "flush_interval", "notice"});
        MigrationConfig& out = config.migration;
        r.optional(s, "state_file", [&](const Setting& v) { out.stateFile = r.readNonEmptyString(v); });
        r.optional(s, "max_entries",
                   [&](const Setting& v) { out.maxEntries = static_cast<int>(r.readInteger(v, 1, 10000000)); });
        r.optional(s, "history_days",
                   [&](const Setting& v) { out.historyDays = static_cast<int>(r.readInteger(v, 1, 3650)); });
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

}  // namespace subproxy::config_detail
