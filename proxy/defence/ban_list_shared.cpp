// BanList and WindowCounter, what several gateways add (issue 11): counts and bans adopted from
// the shared state.  See ban_list.h.
#include "defence/ban_list.h"

#include <algorithm>

namespace subproxy {

void WindowCounter::raise(std::string_view key, unsigned count, std::int64_t now, std::int64_t window) {
    if (count == 0) {
        return;
    }
    Entry& e = touch(key);
    if (e.count == 0 || now - e.start >= window || now < e.start) {
        e.count = 0;
        e.start = now;
    }
    e.count = std::max(e.count, count);
}

bool BanList::adoptBan(const std::string& key, std::int64_t until, unsigned failures, std::int64_t now) {
    if (until <= now) {
        return false;
    }
    auto it = bans_.find(key);
    const bool live = it != bans_.end() && it->second.until > now;
    if (live && it->second.until >= until) {
        return false;
    }
    insertBan(key, until, failures);
    dirty_ = true;
    return !live;
}

void BanList::adoptFailures(const std::string& key, unsigned addressFailures, std::string_view user,
                            unsigned userFailures, std::int64_t now) {
    addresses_.raise(key, addressFailures, now, policy_.window);
    if (!user.empty()) {
        users_.raise(user, userFailures, now, policy_.window);
    }
    dirty_ = true;
}

}  // namespace subproxy
