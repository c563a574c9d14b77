#include "defence/ban_list.h"

#include <algorithm>

namespace subproxy {

// ---------------------------------------------------------------------------------------------
// WindowCounter

WindowCounter::Entry& WindowCounter::touch(std::string_view key) {
    auto it = index_.find(key);
    if (it != index_.end()) {
        lru_.splice(lru_.begin(), lru_, it->second);  // iterators and views stay valid
        return *it->second;
    }
    while (capacity_ > 0 && index_.size() >= capacity_) {
        index_.erase(lru_.back().key);
        lru_.pop_back();
        ++evictions_;
    }
    lru_.push_front(Entry{std::string(key), 0, 0});
    index_.emplace(lru_.front().key, lru_.begin());
    return lru_.front();
}

unsigned WindowCounter::add(std::string_view key, std::int64_t now, std::int64_t window) {
    Entry& e = touch(key);
    if (e.count == 0 || now - e.start >= window || now < e.start) {
        e.count = 0;
        e.start = now;
    }
    if (e.count < UINT32_MAX) {
        ++e.count;
    }
    return e.count;
}

unsigned WindowCounter::count(std::string_view key, std::int64_t now, std::int64_t window) const {
    auto it = index_.find(key);
    if (it == index_.end()) {
        return 0;
    }
    const Entry& e = *it->second;
    return (now - e.start >= window || now < e.start) ? 0 : e.count;
}

void WindowCounter::erase(std::string_view key) {
    auto it = index_.find(key);
    if (it == index_.end()) {
        return;
    }
    auto node = it->second;
    index_.erase(it);  // before the node that owns the key's bytes
    lru_.erase(node);
}

void WindowCounter::restore(std::string_view key, unsigned count, std::int64_t start) {
    Entry& e = touch(key);
    e.count = count;
    e.start = start;
}

void WindowCounter::setCapacity(std::size_t capacity) {
    capacity_ = capacity;
    while (capacity_ > 0 && index_.size() > capacity_) {
        index_.erase(lru_.back().key);
        lru_.pop_back();
        ++evictions_;
    }
}

std::vector<WindowCounter::Entry> WindowCounter::entries(std::int64_t now, std::int64_t window) const {
    std::vector<Entry> out;
    for (auto it = lru_.rbegin(); it != lru_.rend(); ++it) {
        if (it->count > 0 && now - it->start < window && now >= it->start) {
            out.push_back(*it);
        }
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// BanList

BanList::BanList(GuardPolicy policy)
    : policy_(policy), addresses_(policy.maxTracked), users_(policy.maxTracked) {}

void BanList::setPolicy(const GuardPolicy& policy) {
    policy_ = policy;
    addresses_.setCapacity(policy.maxTracked);
    users_.setCapacity(policy.maxTracked);
    while (policy_.maxTracked > 0 && bans_.size() > policy_.maxTracked) {
        eraseSoonest();
        ++banEvictions_;
        dirty_ = true;
    }
}

std::string BanList::addressKey(const IpAddress& addr) const { return clientKey(addr, policy_.ipv6Prefix); }

double BanList::delayFor(unsigned failures) const {
    if (failures == 0 || policy_.delayBase <= 0) {
        return 0;
    }
    // 2^(n-1) overflows nothing below the cap: stop doubling once past it.
    double delay = policy_.delayBase;
    for (unsigned i = 1; i < failures && delay < policy_.delayMax; ++i) {
        delay *= 2;
    }
    return std::min(delay, policy_.delayMax);
}

BanList::Failure BanList::recordFailure(const IpAddress& addr, std::string_view user, std::int64_t now) {
    Failure f;
    f.key = addressKey(addr);
    f.addressFailures = addresses_.add(f.key, now, policy_.window);
    if (!user.empty()) {
        f.userFailures = users_.add(user, now, policy_.window);
    }
    f.delay = delayFor(std::max(f.addressFailures, f.userFailures));
    if (policy_.banThreshold > 0 && f.addressFailures >= policy_.banThreshold && !banned(f.key, now)) {
        insertBan(f.key, now + policy_.banTime, f.addressFailures);
        f.banned = true;
    }
    dirty_ = true;
    return f;
}

void BanList::recordSuccess(std::string_view user) {
    if (users_.contains(user)) {
        users_.erase(user);
        dirty_ = true;
    }
}

bool BanList::banned(const std::string& key, std::int64_t now) const {
    auto it = bans_.find(key);
    return it != bans_.end() && it->second.until > now;  // an expired one waits for prune()
}

void BanList::eraseBan(BanMap::iterator it) {
    byEnd_.erase(EndKey{it->second.until, &*it});  // before the node that owns the key
    bans_.erase(it);
}

void BanList::eraseSoonest() { eraseBan(bans_.find(byEnd_.begin()->second->first)); }

void BanList::insertBan(const std::string& key, std::int64_t until, unsigned failures) {
    auto it = bans_.find(key);
    if (it != bans_.end()) {
        byEnd_.erase(EndKey{it->second.until, &*it});
        it->second = BanEntry{until, failures};
        byEnd_.emplace(until, &*it);
        dirty_ = true;
        return;
    }
    if (policy_.maxTracked > 0 && bans_.size() >= policy_.maxTracked) {
        // Full: the ban ending soonest goes first (it had the least time left to protect us).
        eraseSoonest();
        ++banEvictions_;
    }
    it = bans_.emplace(key, BanEntry{until, failures}).first;
    byEnd_.emplace(until, &*it);
    dirty_ = true;
}

void BanList::ban(const IpAddress& addr, std::int64_t now, std::int64_t seconds, unsigned failures) {
    insertBan(addressKey(addr), now + seconds, failures);
}

std::int64_t BanList::banRemaining(const IpAddress& addr, std::int64_t now) const {
    if (bans_.empty()) {
        return 0;
    }
    auto it = bans_.find(addressKey(addr));
    if (it == bans_.end() || it->second.until <= now) {
        return 0;
    }
    return it->second.until - now;
}

std::string BanList::keyOf(std::string_view addressOrKey) const {
    if (auto c = parseCidr(addressOrKey)) {
        return addressKey(c->network);
    }
    return std::string(addressOrKey);
}

std::string BanList::lift(std::string_view addressOrKey, std::int64_t now) {
    const std::string key = keyOf(addressOrKey);
    auto it = bans_.find(key);
    if (it == bans_.end() || it->second.until <= now) {
        // Not banned: the operator's mistake (a typo, the wrong prefix) must not quietly wipe
        // the failure count that would ban a guesser at that address (an expired ban goes at
        // the next prune anyway).
        return {};
    }
    eraseBan(it);
    addresses_.erase(key);
    dirty_ = true;
    return key;
}

std::vector<BanList::Ban> BanList::bans(std::int64_t now) const {
    std::vector<Ban> out;
    for (const auto& [until, ban] : byEnd_) {
        if (until > now) {
            out.push_back(Ban{ban->first, until, ban->second.failures});
        }
    }
    return out;
}

std::size_t BanList::activeBans(std::int64_t now) const {
    // Expired bans sit at the front of byEnd_ until the next prune(): only they are walked.
    std::size_t expired = 0;
    for (auto it = byEnd_.begin(); it != byEnd_.end() && it->first <= now; ++it) {
        ++expired;
    }
    return bans_.size() - expired;
}

void BanList::prune(std::int64_t now) {
    while (!byEnd_.empty() && byEnd_.begin()->first <= now) {
        eraseSoonest();
        dirty_ = true;
    }
}

}  // namespace subproxy
