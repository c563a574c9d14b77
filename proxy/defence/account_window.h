// Counters that forget on their own (issue 12): a count over a sliding window, and the distinct
// keys (client addresses, dialled addresses) seen in one.  Pure, no clock: every call gets
// `now` (unix seconds), so the unit tests drive time.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace subproxy {

// A count over the last `window` seconds, kept in kSlots buckets: memory is bounded whatever
// the rate, and the window slides in steps of window/kSlots.  An event is forgotten between
// `window` and window + window/kSlots seconds after it happened (never earlier: a limit is
// never lifted before its time).
class WindowCount {
public:
    static constexpr int kSlots = 12;

    void add(std::int64_t now, int window, unsigned n = 1);
    unsigned count(std::int64_t now, int window) const;
    void prune(std::int64_t now, int window);
    bool empty() const { return buckets_.empty(); }

    // (bucket start, count), oldest first: for the state file.
    const std::vector<std::pair<std::int64_t, unsigned>>& buckets() const { return buckets_; }
    void restore(std::int64_t start, unsigned n) { buckets_.emplace_back(start, n); }
    // The fleet's buckets (fleet_accounts.h), which replace what was known of them.
    void assign(std::vector<std::pair<std::int64_t, unsigned>> buckets) { buckets_ = std::move(buckets); }

    // The buckets' width; the fleet's counters use the same (fleet_accounts.h).
    static std::int64_t slot(int window) { return window / kSlots > 0 ? window / kSlots : 1; }
    // Whether a bucket begun at `start` may still hold an event of the last `window` seconds.
    static bool live(std::int64_t start, std::int64_t now, int window) { return start + slot(window) + window > now; }

private:
    std::vector<std::pair<std::int64_t, unsigned>> buckets_;
};

// Distinct keys seen in the last `window` seconds, with when each was first and last seen.
// Bounded: beyond `cap` keys the least recently seen one goes.
class RecentSet {
public:
    struct Entry {
        std::string key;
        std::int64_t first = 0;
        std::int64_t last = 0;
    };

    void see(const std::string& key, std::int64_t now, std::size_t cap);
    unsigned count(std::int64_t now, int window) const;
    void prune(std::int64_t now, int window);
    bool empty() const { return entries_.empty(); }
    const std::vector<Entry>& entries() const { return entries_; }
    void restore(Entry entry) { entries_.push_back(std::move(entry)); }
    // "192.0.2.1, 192.0.2.7": the keys seen in the window, most recent first.
    std::string list(std::int64_t now, int window) const;

private:
    std::vector<Entry> entries_;
};

}  // namespace subproxy
