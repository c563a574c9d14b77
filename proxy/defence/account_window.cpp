#include "defence/account_window.h"

#include <algorithm>

namespace subproxy {

void WindowCount::add(std::int64_t now, int window, unsigned n) {
    prune(now, window);
    if (!buckets_.empty() && buckets_.back().first + slot(window) > now && buckets_.back().first <= now) {
        buckets_.back().second += n;
        return;
    }
    buckets_.emplace_back(now, n);
}

unsigned WindowCount::count(std::int64_t now, int window) const {
    unsigned total = 0;
    for (const auto& [start, n] : buckets_) {
        if (live(start, now, window)) {
            total += n;
        }
    }
    return total;
}

void WindowCount::prune(std::int64_t now, int window) {
    buckets_.erase(std::remove_if(buckets_.begin(), buckets_.end(),
                                  [&](const auto& b) { return !live(b.first, now, window); }),
                   buckets_.end());
}

void RecentSet::see(const std::string& key, std::int64_t now, std::size_t cap) {
    for (Entry& e : entries_) {
        if (e.key == key) {
            e.last = std::max(e.last, now);
            return;
        }
    }
    if (cap > 0 && entries_.size() >= cap) {
        const auto oldest = std::min_element(entries_.begin(), entries_.end(),
                                             [](const Entry& a, const Entry& b) { return a.last < b.last; });
        entries_.erase(oldest);
    }
    entries_.push_back(Entry{key, now, now});
}

unsigned RecentSet::count(std::int64_t now, int window) const {
    return static_cast<unsigned>(
        std::count_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.last > now - window; }));
}

void RecentSet::prune(std::int64_t now, int window) {
    entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                  [&](const Entry& e) { return e.last <= now - window; }),
                   entries_.end());
}

std::string RecentSet::list(std::int64_t now, int window) const {
    std::vector<const Entry*> live;
    for (const Entry& e : entries_) {
        if (e.last > now - window) {
            live.push_back(&e);
        }
    }
    std::sort(live.begin(), live.end(), [](const Entry* a, const Entry* b) { return a->last > b->last; });
    std::string out;
    for (const Entry* e : live) {
        out += (out.empty() ? "" : ", ") + e->key;
    }
    return out;
}

}  // namespace subproxy
