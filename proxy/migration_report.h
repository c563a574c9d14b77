// The migration report: who still submits through the intercepted port, per authenticated
// user and per client address (count, first and last time), so the help desk can call the
// customers still on the old settings, and the TLS version each came with last (who runs a
// mail program too old for TLS 1.2).  Pure: the state file text is produced and parsed
// here; migration_store.cpp does the file I/O.  Bounded: each table keeps at most
// `maxEntries`, evicting the least recently seen.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace subproxy {

struct MigrationEntry {
    std::uint64_t count = 0;
    std::int64_t first = 0;  // unix time
    std::int64_t last = 0;
    std::string other;       // users: the last client address; addresses: the last user
    std::string tls;         // TLS version of the last submission ("TLSv1.2"); empty: unknown
};

class MigrationReport {
public:
    explicit MigrationReport(std::size_t maxEntries = 100000) : max_(maxEntries) {}

    // One message accepted by the MSA from `user` (may be empty: unknown) at `address`, over
    // `tls` ("TLSv1.3"; empty: unknown).
    void record(const std::string& user, const std::string& address, std::int64_t now,
                const std::string& tls = {});

    const std::map<std::string, MigrationEntry>& users() const { return users_; }
    const std::map<std::string, MigrationEntry>& addresses() const { return addresses_; }
    std::uint64_t total() const { return total_; }
    bool dirty() const { return dirty_; }
    void markClean() { dirty_ = false; }
    void setMaxEntries(std::size_t n);

    // State file: "subproxy-migration 1" then one entry per line, fields separated by
    // spaces, names %-escaped: tag, key, count, first, last, other, tls.  The tls field came
    // later: parse() takes entries without it (files written before), and older versions
    // ignore it, so the file moves both ways between versions.  parse() fills *error with
    // "line N: why" and returns nullopt.
    std::string serialize() const;
    static std::optional<MigrationReport> parse(const std::string& text, std::size_t maxEntries,
                                                std::string* error);

    // `subproxy -r`: aligned text tables, most recent first.  Times in UTC.
    std::string table() const;
    std::string json() const;

private:
    void trim(std::map<std::string, MigrationEntry>& table);

    std::size_t max_;
    std::map<std::string, MigrationEntry> users_;
    std::map<std::string, MigrationEntry> addresses_;
    std::uint64_t total_ = 0;
    bool dirty_ = false;
};

// "%XX" for bytes <= 0x20, >= 0x7f and '%'; "-" for the empty string.
std::string escapeField(const std::string& s);
std::optional<std::string> unescapeField(const std::string& s);
// "2026-11-22 11:25:35" (UTC).
std::string formatTime(std::int64_t t);

}  // namespace subproxy
