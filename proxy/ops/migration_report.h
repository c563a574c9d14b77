// The migration report: who still submits through the intercepted ports, so the help desk can
// call the customers still on the old settings.  One record per (authenticated user, client
// address, dialled port): count, first and last submission, and the SASL mechanism and TLS
// version of the last one (who runs a mail program too old for TLS 1.2).  Besides, the
// transition over time: per UTC day and dialled port, submissions and distinct users, kept for
// `historyDays`, which answers "is the number of port-25 users going down?".
//
// Pure: the records and history (migration_report.cpp), the state file text
// (migration_state_file.cpp), the `subproxy -r` / status page renderings (migration_render.cpp)
// and the field and date formats they share (migration_fields.cpp); migration_store.cpp does the
// file I/O.  Every function that needs the time takes it as an argument (tests inject it).
// Bounded: at most `maxEntries` records (the least recently seen is evicted), `historyDays` days
// of history, and at most `maxEntries` users remembered per port for today's distinct count.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "ops/metrics.h"  // MigrationPortFigures

namespace subproxy {

struct MigrationConfig;

struct MigrationLimits {
    std::size_t maxEntries = 100000;  // migration.max_entries
    int historyDays = 90;             // migration.history_days: days kept, today included
};
MigrationLimits migrationLimits(const MigrationConfig& config);

// One message the MSA accepted.
struct MigrationSubmission {
    std::string user;       // the authenticated login; empty: unknown
    std::string address;    // the customer's address
    int port = 0;           // the port the customer dialled (ClientEndpoint::destPort); 0: unknown
    std::string mechanism;  // SASL mechanism ("PLAIN"); empty: unknown
    std::string tls;        // "TLSv1.3"; empty: unknown
};

struct MigrationKey {
    std::string user;
    std::string address;
    int port = 0;  // 0: unknown (records converted from a version 1 state file)
    bool operator<(const MigrationKey& o) const {
        return std::tie(user, address, port) < std::tie(o.user, o.address, o.port);
    }
    bool operator==(const MigrationKey& o) const {
        return std::tie(user, address, port) == std::tie(o.user, o.address, o.port);
    }
};

struct MigrationRecord {
    std::uint64_t count = 0;
    std::int64_t first = 0;  // unix time
    std::int64_t last = 0;
    std::string mechanism;   // of the last submission; empty: unknown
    std::string tls;         // of the last submission ("TLSv1.2"); empty: unknown
    bool operator==(const MigrationRecord& o) const {
        return count == o.count && first == o.first && last == o.last && mechanism == o.mechanism && tls == o.tls;
    }
};

// One UTC day through one dialled port.
struct MigrationDay {
    std::uint64_t users = 0;        // distinct users (an unknown user counts by its address)
    std::uint64_t submissions = 0;
    bool operator==(const MigrationDay& o) const { return users == o.users && submissions == o.submissions; }
};

// A row of the history as shown: every day in range, every port shown, zeros included.
struct MigrationHistoryRow {
    std::int64_t day = 0;  // days since 1970-01-01 (UTC)
    int port = 0;
    MigrationDay counts;
};

// What `subproxy -r` (and the status pages) select.
struct MigrationFilter {
    std::optional<int> port;               // --port: only this dialled port
    std::optional<std::int64_t> since;     // --since: records last seen at or after this time
    std::optional<std::int64_t> notSince;  // --not-since: users whose last submission (through the
                                           // selected port) is before this time; all their records
};

enum class MigrationFormat { Text, Csv, Json };

// `subproxy -r [--json|--csv] [--history] [--port N] [--since T] [--not-since T]`.
struct MigrationQuery {
    MigrationFormat format = MigrationFormat::Text;
    bool history = false;  // the per-day table instead of the records (JSON always has both)
    MigrationFilter filter;
};

class MigrationReport {
public:
    explicit MigrationReport(MigrationLimits limits = {});

    void record(const MigrationSubmission& submission, std::int64_t now);

    const std::map<MigrationKey, MigrationRecord>& records() const { return records_; }
    // Per (day, port); days older than historyDays before the latest recorded day are gone.
    const std::map<std::pair<std::int64_t, int>, MigrationDay>& history() const { return history_; }
    // Submissions per dialled port since the state file began (port 0: from a version 1 file).
    const std::map<int, std::uint64_t>& totals() const { return totals_; }
    std::uint64_t total() const;
    std::size_t distinctUsers() const;  // among the records (named users only)

    bool dirty() const { return dirty_; }
    void markClean() { dirty_ = false; }
    void markDirty() { dirty_ = true; }  // a save failed
    const MigrationLimits& limits() const { return limits_; }
    void setLimits(MigrationLimits limits);

    // State file, version 2 ("subproxy-migration 2"); see serialize() in
    // migration_state_file.cpp for the lines.  parse() also takes version 1 files (two tables,
    // users and addresses, no ports) and converts them: each user becomes a record at its last
    // client address with port 0 (unknown); an address whose last user was unknown becomes a
    // record without a user; the total goes to port 0.  parse() fills *error with "line N: why"
    // and returns nullopt.
    std::string serialize() const;
    static std::optional<MigrationReport> parse(const std::string& text, MigrationLimits limits,
                                                std::string* error);

    // The records `filter` selects, most recently seen first.
    std::vector<std::pair<MigrationKey, MigrationRecord>> select(const MigrationFilter& filter) const;
    // Every day from the oldest kept (or filter.since) to the day of `now`, newest first, for
    // every port in the history (or filter.port); zeros where nothing was submitted.
    std::vector<MigrationHistoryRow> historyRows(const MigrationFilter& filter, std::int64_t now) const;

    // `subproxy -r` and the status pages.  Times in UTC.
    std::string recordsText(const MigrationFilter& filter) const;
    std::string recordsCsv(const MigrationFilter& filter) const;
    std::string historyText(const MigrationFilter& filter, std::int64_t now) const;
    std::string historyCsv(const MigrationFilter& filter, std::int64_t now) const;
    // One document: totals, the selected records and the history.
    std::string json(const MigrationFilter& filter, std::int64_t now) const;
    std::string render(const MigrationQuery& query, std::int64_t now) const;

    // The fleet's report as read back from Redis (state.backend "redis", `subproxy -r`;
    // migration_shared.cpp): whole records, days and totals, set as they are.
    void restoreRecord(const MigrationKey& key, const MigrationRecord& record);
    void restoreDay(std::int64_t day, int port, const MigrationDay& figures);
    void restoreTotal(int port, std::uint64_t submissions);

    // For /metrics: today's distinct users and all submissions per port; 25 and 465 always.
    std::vector<MigrationPortFigures> portFigures(std::int64_t now) const;

private:
    class StateFileReader;  // parse()'s line reader (migration_state_file.cpp)

    void trimRecords();
    void trimHistory();

    MigrationLimits limits_;
    std::map<MigrationKey, MigrationRecord> records_;
    std::map<std::pair<std::int64_t, int>, MigrationDay> history_;
    std::map<int, std::uint64_t> totals_;
    std::int64_t today_ = 0;                          // the day todayUsers_ belongs to
    std::map<int, std::set<std::string>> todayUsers_;  // per port: who was counted today
    bool dirty_ = false;
};

// Who counts as one user in the daily distinct count: the login, or the client address when
// the login is unknown ("@" keeps an address apart from a login of the same spelling).
std::string migrationIdentity(const std::string& user, const std::string& address);

// "%XX" for bytes <= 0x20, >= 0x7f and '%'; "-" for the empty string.
std::string escapeField(const std::string& s);
std::optional<std::string> unescapeField(const std::string& s);
// A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.
std::string csvField(const std::string& s);
// "2026-11-22 11:25:35" (UTC).
std::string formatTime(std::int64_t t);
// Days since 1970-01-01 of a UTC time (floor, also before 1970), and back to "2026-11-22".
std::int64_t utcDay(std::int64_t t);
std::string formatDay(std::int64_t day);
// "2026-11-22" (a real calendar date, years 1970-9999) to days since 1970-01-01.
std::optional<std::int64_t> parseDay(const std::string& text);
// A --since / --not-since argument: "N" days before `now` (0..36500), or a date "YYYY-MM-DD"
// (its 00:00 UTC).  nullopt for anything else.
std::optional<std::int64_t> parseReportTime(const std::string& text, std::int64_t now);

}  // namespace subproxy
