// Password-guesser defence, the pure part: AUTH failures counted per client address (IPv6
// grouped by prefix) and per user name within a window, the exponential delay before each
// 535, bans past a threshold, and the text form of all of it for the state file.  No clock,
// no I/O: the caller passes "now" (wall-clock seconds, so bans survive a restart) and writes
// the file.  Memory is bounded: every table holds at most maxTracked entries, and making room
// costs O(1) (counters: LRU list) or O(log n) (bans: ordered by end time), so a flood of new
// addresses on a full table costs no more per ban than on an empty one.
#pragma once
#include <cstdint>
#include <list>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "wire/cidr.h"
#include "wire/percent_encoding.h"  // the NAME field of the state file

namespace subproxy {

struct GuardPolicy {
    unsigned ipv6Prefix = 64;        // IPv6 clients are counted and banned per /64
    double delayBase = 2.0;          // seconds before the 535 after the first failure
    double delayMax = 15.0;          // cap of the doubling (Dovecot: 2, 4, 8, 15)
    std::int64_t window = 600;       // seconds a failure counts
    unsigned banThreshold = 10;      // failures from one address within window; 0 = never ban
    std::int64_t banTime = 3600;     // seconds
    std::size_t maxTracked = 100000; // per table: addresses, users, bans
};

// Events per key within a window that opens at the key's first event (a fixed window: cheap,
// and a guesser spreading attempts just under the window only buys itself the delays).
// Least recently touched keys are evicted first once `capacity` is reached.
class WindowCounter {
public:
    explicit WindowCounter(std::size_t capacity) : capacity_(capacity) {}
    // The index holds views into the list's nodes: a copy would point into the original.
    WindowCounter(const WindowCounter&) = delete;
    WindowCounter& operator=(const WindowCounter&) = delete;
    WindowCounter(WindowCounter&&) = default;  // nodes move with their containers
    WindowCounter& operator=(WindowCounter&&) = default;
    // Counts one event; returns the count in the current window, this one included.
    unsigned add(std::string_view key, std::int64_t now, std::int64_t window);
    unsigned count(std::string_view key, std::int64_t now, std::int64_t window) const;
    void erase(std::string_view key);
    bool contains(std::string_view key) const { return index_.count(key) > 0; }
    // Restores an entry read from the state file (most recent last).
    void restore(std::string_view key, unsigned count, std::int64_t start);
    // The count as a wider view saw it (several gateways, ban_list_shared.cpp): the key's count
    // in the current window rises to `count`, never falls.
    void raise(std::string_view key, unsigned count, std::int64_t now, std::int64_t window);
    void setCapacity(std::size_t capacity);
    std::size_t size() const { return index_.size(); }
    std::size_t evictions() const { return evictions_; }
    struct Entry {
        std::string key;
        unsigned count = 0;
        std::int64_t start = 0;
    };
    // Oldest first (the order restore() wants back).
    std::vector<Entry> entries(std::int64_t now, std::int64_t window) const;

private:
    Entry& touch(std::string_view key);
    std::size_t capacity_;
    std::size_t evictions_ = 0;
    std::list<Entry> lru_;  // most recently touched first
    std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;  // views into lru_
};

class BanList {
public:
    explicit BanList(GuardPolicy policy = {});
    // byEnd_ points into bans_' nodes: no copies (moves keep the nodes).
    BanList(const BanList&) = delete;
    BanList& operator=(const BanList&) = delete;
    BanList(BanList&&) = default;
    BanList& operator=(BanList&&) = default;
    void setPolicy(const GuardPolicy& policy);  // SIGHUP; existing bans keep their end time
    const GuardPolicy& policy() const { return policy_; }

    // "192.0.2.7", or "2001:db8:1:2::/64" for IPv6 grouped by the policy's prefix.
    std::string addressKey(const IpAddress& addr) const;

    struct Failure {
        std::string key;             // addressKey()
        unsigned addressFailures = 0;
        unsigned userFailures = 0;
        double delay = 0;            // seconds to hold the 535
        bool banned = false;         // this failure crossed the threshold
    };
    // One failed AUTH.  Unknown and existing user names are counted alike, so the delay never
    // tells a guesser which names exist.
    Failure recordFailure(const IpAddress& addr, std::string_view user, std::int64_t now);
    // A correct password: the user's own count is cleared (a customer who mistyped is not
    // slowed next time); the address count stays, so a guesser with one valid account
    // cannot launder its record.
    void recordSuccess(std::string_view user);

    // Seconds of ban left for addr, 0 when not banned.
    std::int64_t banRemaining(const IpAddress& addr, std::int64_t now) const;
    // The operator's "lift": an address ("2001:db8:1:2::5" lifts its whole /64) or a key.
    // Clears the ban and the address's failure count; returns the key.  An address that is not
    // banned is left alone (its failure count too): returns empty.
    std::string lift(std::string_view addressOrKey, std::int64_t now);
    // Bans the address now (for tests and the control socket's "ban").
    void ban(const IpAddress& addr, std::int64_t now, std::int64_t seconds, unsigned failures);

    // Several gateways (issue 11; ban_list_shared.cpp).  The key an operator's argument names.
    std::string keyFor(std::string_view addressOrKey) const { return keyOf(addressOrKey); }
    // A ban made elsewhere: taken unless one ending as late is in force here.  True when the
    // key was not banned here (a new ban, worth a log line), false when merely lengthened or kept.
    bool adoptBan(const std::string& key, std::int64_t until, unsigned failures, std::int64_t now);
    // Failure counts as the whole fleet saw them: this gateway's rise to them (never fall), so
    // its delays and its threshold count every gateway's failures, also once Redis is gone.
    void adoptFailures(const std::string& key, unsigned addressFailures, std::string_view user,
                       unsigned userFailures, std::int64_t now);

    struct Ban {
        std::string key;
        std::int64_t until = 0;
        unsigned failures = 0;
    };
    std::vector<Ban> bans(std::int64_t now) const;  // soonest-ending first
    // Bans in force at `now` (banCount() less the expired ones prune() has not dropped yet).
    std::size_t activeBans(std::int64_t now) const;
    void prune(std::int64_t now);                   // drops expired bans
    // Bans evicted to make room since construction (the table was full).
    std::size_t banEvictions() const { return banEvictions_; }

    // Exponential delay for the nth failure (n >= 1): base * 2^(n-1), at most delayMax.
    double delayFor(unsigned failures) const;

    // State file text (ban_list_state.cpp): one record per line, "#" comments.  See subproxy(8),
    // FILES.
    //   ban KEY UNTIL FAILURES      addr KEY COUNT START      user NAME COUNT START
    // NAME is percent-encoded (bytes outside '!'..'~' and '%').  Times are Unix seconds.
    std::string serialise(std::int64_t now) const;
    // Merges state file text; may be called chunk by chunk, each chunk whole lines (a last
    // line without a newline counts too).  No allocation per line beyond the entries kept.
    // A file holding more than maxTracked entries of a kind keeps the bans that end last
    // (a ban that would be the first to go is not even inserted) and the counters listed
    // last (the file lists them least recently touched first); the rest are dropped.
    struct LoadResult {
        std::size_t unreadable = 0;  // lines skipped
        std::size_t dropped = 0;     // entries that did not fit maxTracked
        LoadResult& operator+=(const LoadResult& o) {
            unreadable += o.unreadable;
            dropped += o.dropped;
            return *this;
        }
    };
    LoadResult load(std::string_view text, std::int64_t now);

    bool dirty() const { return dirty_; }
    void clearDirty() { dirty_ = false; }
    void markDirty() { dirty_ = true; }  // a save of it failed: try again
    std::size_t trackedAddresses() const { return addresses_.size(); }
    std::size_t trackedUsers() const { return users_.size(); }
    std::size_t banCount() const { return bans_.size(); }

private:
    struct BanEntry {
        std::int64_t until = 0;
        unsigned failures = 0;
    };
    using BanMap = std::unordered_map<std::string, BanEntry>;
    // The bans ordered by end time, then key: the one ending soonest is evicted in O(log n),
    // prune() stops at the first live one, and listing needs no sort.  The pointers point to
    // bans_' nodes, which never move; the end time is copied in, and an entry is taken out
    // before its ban changes.
    using EndKey = std::pair<std::int64_t, const BanMap::value_type*>;
    struct EndsFirst {
        bool operator()(const EndKey& a, const EndKey& b) const {
            return a.first != b.first ? a.first < b.first : a.second->first < b.second->first;
        }
    };

    std::string keyOf(std::string_view addressOrKey) const;
    bool banned(const std::string& key, std::int64_t now) const;
    void insertBan(const std::string& key, std::int64_t until, unsigned failures);
    void eraseBan(BanMap::iterator it);
    void eraseSoonest();  // the first in byEnd_; the table is not empty
    void parseLine(std::string_view line, std::int64_t now, LoadResult& result);

    GuardPolicy policy_;
    WindowCounter addresses_;
    WindowCounter users_;
    BanMap bans_;
    std::set<EndKey, EndsFirst> byEnd_;
    std::size_t banEvictions_ = 0;
    std::string scratch_;  // load(): a decoded user name, reused from line to line
    bool dirty_ = false;
};

}  // namespace subproxy
