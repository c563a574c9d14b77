// Counters for the status endpoint: a plain struct the session and protocol layers bump, and
// pure renderers (Prometheus text format 0.0.4, JSON).  No I/O and no clock: durations are
// measured by the I/O glue (session_metrics.cpp) and handed in as seconds, and the figures
// read at scrape time (live bans, /proc) come in as ScrapeFigures.  So the renderers are
// unit-tested byte for byte; status_http.cpp only serves the strings.
//
// Every series whose label values are known in advance (mechanisms, kinds, reply classes,
// trap signals, AUTH results, relayed commands, configured DNSBL zones) exists at 0 from the
// start: alerts written with absent() or rate() work before the first event.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "defence/account_policy.h"  // kFlagReasons, flagReasonName
#include "defence/trap.h"  // TrapSignal, trapSignalName

namespace subproxy {

// Upper bounds of the latency buckets, in seconds: 1 ms (a cached or local answer) to 60 s (a
// slow password backend or a content filter behind the MSA's end-of-data reply); +Inf implied.
inline const std::vector<double> kLatencyBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                    0.5,   1,      2.5,   5,    10,    30,   60};

// A Prometheus histogram: counts per bucket, the sum and the count of the observations.
class Histogram {
public:
    explicit Histogram(std::vector<double> bounds = kLatencyBuckets);
    void observe(double value);
    void add(const Histogram& other);  // same bounds: every series uses kLatencyBuckets
    const std::vector<double>& bounds() const { return bounds_; }
    // Observations <= bounds()[i] (cumulative, as the exposition format wants).
    std::uint64_t cumulative(std::size_t i) const;
    std::uint64_t count() const { return count_; }
    double sum() const { return sum_; }

private:
    std::vector<double> bounds_;
    std::vector<std::uint64_t> perBucket_;  // observations in (bounds_[i-1], bounds_[i]]
    std::uint64_t count_ = 0;
    double sum_ = 0;
};

// Label values of the series that exist from the start.
inline constexpr std::array<const char*, 3> kAuthMechanisms = {"PLAIN", "LOGIN", "CRAM-MD5"};
// Indexed by UpstreamFailure (client_protocol.h).
inline constexpr std::array<const char*, 7> kUpstreamErrorKinds = {"connect", "tls",  "verify", "protocol",
                                                                   "refused", "lost", "timeout"};
inline constexpr std::array<const char*, 2> kAuthBackendErrorKinds = {"error", "timeout"};
// The verdict of an AUTH exchange: 235, 535 (or another 5xx refusal of the credentials), 454.
enum class AuthOutcome { Success, Failure, Temporary };
inline constexpr std::array<const char*, 3> kAuthOutcomes = {"success", "failure", "temporary"};
// Commands relayed to the MSA, by what their reply answers ("end_of_data": the "." after the
// body, whose reply is the MSA's verdict on the message).
inline constexpr std::array<const char*, 8> kRelayedCommands = {"mail", "rcpt", "data", "end_of_data",
                                                                "rset", "noop", "quit", "auth"};

// Compromised accounts (issue 12); rendered with the rest by renderPrometheus.
struct AccountCounts {
    std::uint64_t flags[kFlagReasons] = {};  // accounts flagged, by FlagReason
    std::uint64_t limitRefusals[2] = {};     // 451 at the limit: [0] messages (MAIL), [1] recipients (RCPT)
    std::uint64_t loginRefusals = 0;         // AUTH refused: flagged for its places, action "refuse"
    std::uint64_t passwordChecks[3] = {};    // [0] weak, [1] not weak, [2] the check failed
};

struct Metrics {
    Metrics();  // the series known in advance, at 0

    std::int64_t startedAt = 0;          // unix time, for the JSON's uptime
    std::uint64_t sessionsOpen = 0;      // gauge
    std::uint64_t sessionsTotal = 0;     // accepted into a session
    std::uint64_t connectionsRefused = 0;  // refused at accept (limits, shutdown, loop)
    std::uint64_t sessionsShed = 0;        // unauthenticated sessions closed to make room
    std::uint64_t tlsHandshakes = 0;     // customer side, completed
    std::uint64_t tlsFailures = 0;       // customer side, failed or abandoned
    std::uint64_t implicitTlsDetections = 0;  // ClientHellos on a STARTTLS listener
    std::map<std::string, std::uint64_t> authSuccesses;  // by mechanism
    std::map<std::string, std::uint64_t> authFailures;   // by mechanism (wrong credentials)
    std::uint64_t authTemporaryFailures = 0;             // 454: backend or MSA unavailable
    std::map<std::string, std::uint64_t> authBackendErrors;  // by kind: error, timeout
    std::uint64_t authDelayedReplies = 0;  // 535s held back by the guard
    std::uint64_t authCacheHits = 0;       // PLAIN/LOGIN answered from auth.cache_ttl's cache
    std::map<std::string, Histogram> authDuration;  // by AuthOutcome name
    std::uint64_t messagesRelayed = 0;   // accepted by the MSA (2xx after end of data)
    std::uint64_t messagesRejected = 0;  // refused by us or by the MSA
    std::uint64_t bytesRelayed = 0;      // message bytes of the relayed messages
    std::map<std::string, std::uint64_t> upstreamErrors;  // by kUpstreamErrorKinds
    std::uint64_t upstreamFailovers = 0;  // an MSA host failed before the session was ready
    std::map<std::string, Histogram> upstreamReplyDuration;  // by kRelayedCommands
    std::uint64_t repliesByClass[6] = {};                    // index = first digit (2..5)
    std::uint64_t bans = 0;         // addresses banned (AUTH failures or the trap)
    std::uint64_t banRefusals = 0;  // connections refused because banned
    std::uint64_t trapDetections[kTrapSignals] = {};  // by TrapSignal
    struct DnsblCounts {
        std::uint64_t queries = 0;  // client addresses looked up (answered by DNS or the cache)
        std::uint64_t hits = 0;     // ... that the zone lists (its filters matched)
        std::uint64_t errors = 0;   // ... that got no usable answer (timeout, SERVFAIL, refusal)
    };
    std::map<std::string, DnsblCounts> dnsbl;  // by zone name (dnsbl.zones' name)
    std::uint64_t reloads = 0;
    std::uint64_t reloadFailures = 0;
    AccountCounts accounts;
    // The shared state (issue 11; the control loop's, not added up from the workers): failed
    // connections and commands unanswered in time or refused, updates dropped from the full
    // replay queue, updates waiting in it, and whether Redis is reachable (local: always 1).
    std::uint64_t stateBackendErrors = 0;
    std::uint64_t stateBackendDropped = 0;
    std::uint64_t stateBackendQueued = 0;  // gauge
    std::uint64_t stateBackendUp = 1;      // gauge

    void reply(int code);
    void authResult(const std::string& mechanism, bool ok);
    void upstreamError(const std::string& kind);
    void authBackendError(const std::string& kind);
    void trapDetected(TrapSignal signal) { ++trapDetections[static_cast<int>(signal)]; }
    // The configured zones exist from the start (and from a reload that adds one); a zone
    // dropped by a reload keeps its series: counters never go back.
    void dnsblZones(const std::vector<std::string>& names);
    void authAnswered(AuthOutcome outcome, double seconds);
    void upstreamReplied(const std::string& command, double seconds);
};

// Each event loop counts into its own Metrics (no locks on the hot path); a scrape adds them up.
// Maps are added key by key; startedAt is left alone (the process's, set once).
void addMetrics(Metrics& into, const Metrics& from);

// Read at scrape time rather than counted: they change without an event (a ban expires).
struct ProcessFigures {
    double startTimeSeconds = 0;  // unix time
    double cpuSeconds = 0;        // user + system
    std::uint64_t residentBytes = 0;
    std::uint64_t virtualBytes = 0;
    std::uint64_t openFds = 0;
    std::uint64_t maxFds = 0;     // the soft RLIMIT_NOFILE
};
struct ScrapeFigures {
    std::uint64_t activeBans = 0;           // bans in force now
    std::vector<std::uint64_t> workerSessions;  // sessions accepted by each event loop (workers)
    std::optional<ProcessFigures> process;  // nullopt: /proc unreadable, process_* left out
};

// /proc/self/stat (proc(5)): CPU time (utime + stime), start time (starttime, in ticks after
// boot, plus `bootTime`, the unix time of the boot), vsize and rss, as the Prometheus client
// libraries read them.  The command name may hold spaces and parentheses: fields are counted
// after its last ')'.  Leaves openFds and maxFds alone.  False when the text is not a stat line.
bool parseProcStat(std::string_view stat, double ticksPerSecond, double pageSize, double bootTime,
                   ProcessFigures& out);

// Prometheus text exposition format (HELP/TYPE lines; counters end in _total; units last).
std::string renderPrometheus(const Metrics& m, const ScrapeFigures& live);
// The counters as a JSON object (for /status).
std::string renderJson(const Metrics& m, const ScrapeFigures& live, std::int64_t now);
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
