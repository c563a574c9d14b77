// Counters for the status endpoint: a plain struct the session and protocol layers bump, and
// pure renderers (Prometheus text format 0.0.4, JSON).  No I/O, so the renderers are
// unit-tested byte for byte; status_http.cpp only serves the strings.
#pragma once
#include <cstdint>
#include <ctime>
#include <map>
#include <string>
#include <vector>

namespace subproxy {

struct Metrics {
    std::int64_t startedAt = 0;          // unix time, for uptime
    std::uint64_t sessionsOpen = 0;      // gauge
    std::uint64_t sessionsTotal = 0;     // accepted into a session
    std::uint64_t connectionsRefused = 0;  // refused at accept (limits, shutdown, loop)
    std::uint64_t sessionsShed = 0;        // unauthenticated sessions closed to make room
    std::uint64_t tlsHandshakes = 0;     // customer side, completed
    std::uint64_t tlsFailures = 0;       // customer side, failed or abandoned
    std::map<std::string, std::uint64_t> authSuccesses;  // by mechanism
    std::map<std::string, std::uint64_t> authFailures;   // by mechanism (wrong credentials)
    std::uint64_t authTemporaryFailures = 0;             // 454: backend or MSA unavailable
    std::map<std::string, std::uint64_t> authBackendErrors;  // by kind: error, timeout
    std::uint64_t messagesRelayed = 0;   // accepted by the MSA (2xx after end of data)
    std::uint64_t messagesRejected = 0;  // refused by us or by the MSA
    std::uint64_t bytesRelayed = 0;      // message bytes of the relayed messages
    std::map<std::string, std::uint64_t> upstreamErrors;  // connect, tls, verify, protocol, …
    std::uint64_t repliesByClass[6] = {};                  // index = first digit (2..5)
    std::uint64_t reloads = 0;
    std::uint64_t reloadFailures = 0;
    // Counters other modules register by name (bans, trap detections, …):
    // "bans" -> subproxy_bans_total with its help text.
    struct Extra {
        std::string help;
        std::uint64_t value = 0;
    };
    std::map<std::string, Extra> extra;

    void reply(int code);
    void authResult(const std::string& mechanism, bool ok);
    void upstreamError(const std::string& kind);
    void authBackendError(const std::string& kind);
    void count(const std::string& name, const std::string& help, std::uint64_t n = 1);
};

// Prometheus text exposition format (HELP/TYPE lines; counters end in _total).
std::string renderPrometheus(const Metrics& m, std::int64_t now);
// The same numbers as a JSON object (for /status).
std::string renderJson(const Metrics& m, std::int64_t now);
// The migration report's figures per dialled port (migration_report.h computes them; the
// status endpoint appends this rendering to /metrics):
//   subproxy_migration_users{port}              gauge: distinct users who submitted through the
//                                               port today (UTC day; 0 after midnight)
//   subproxy_migration_submissions_total{port}  counter: submissions through the port, kept in
//                                               migration.state_file across restarts
struct MigrationPortFigures {
    int port = 0;
    std::uint64_t usersToday = 0;
    std::uint64_t submissions = 0;
};
std::string renderMigrationPrometheus(const std::vector<MigrationPortFigures>& ports);
// "..." with JSON escapes (control bytes as \u00XX; other bytes passed through).
std::string jsonString(const std::string& s);

}  // namespace subproxy
