#include "ban_list.h"

#include <algorithm>
#include <cmath>
#include <sstream>

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
    if (policy_.banThreshold > 0 && f.addressFailures >= policy_.banThreshold && bans_.count(f.key) == 0) {
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

void BanList::insertBan(const std::string& key, std::int64_t until, unsigned failures) {
    if (bans_.count(key) == 0 && policy_.maxTracked > 0 && bans_.size() >= policy_.maxTracked) {
        // Full: the ban ending soonest goes first (it had the least time left to protect us).
        auto soonest = std::min_element(bans_.begin(), bans_.end(),
                                        [](const auto& a, const auto& b) { return a.second.until < b.second.until; });
        bans_.erase(soonest);
    }
    bans_[key] = Ban{key, until, failures};
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
    const bool wasBanned = it != bans_.end() && it->second.until > now;
    if (it != bans_.end()) {
        bans_.erase(it);
    }
    addresses_.erase(key);
    dirty_ = true;
    return wasBanned ? key : std::string();
}

std::vector<BanList::Ban> BanList::bans(std::int64_t now) const {
    std::vector<Ban> out;
    for (const auto& [key, b] : bans_) {
        if (b.until > now) {
            out.push_back(b);
        }
    }
    std::sort(out.begin(), out.end(), [](const Ban& a, const Ban& b) {
        return a.until != b.until ? a.until < b.until : a.key < b.key;
    });
    return out;
}

void BanList::prune(std::int64_t now) {
    for (auto it = bans_.begin(); it != bans_.end();) {
        if (it->second.until <= now) {
            it = bans_.erase(it);
            dirty_ = true;
        } else {
            ++it;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// State file

std::string percentEncode(std::string_view raw) {
    static const char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (char c : raw) {
        const auto b = static_cast<unsigned char>(c);
        if (b <= 0x20 || b >= 0x7f || b == '%') {
            out += '%';
            out += kHex[b >> 4];
            out += kHex[b & 15];
        } else {
            out += c;
        }
    }
    return out;
}

bool percentDecode(std::string_view text, std::string& out) {
    out.clear();
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out += text[i];
            continue;
        }
        if (i + 2 >= text.size()) {
            return false;
        }
        const int hi = hex(text[i + 1]);
        const int lo = hex(text[i + 2]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return true;
}

std::string BanList::serialise(std::int64_t now) const {
    std::ostringstream out;
    out << "# subproxy guard state v1: written by the daemon; see subproxy(8)\n";
    for (const Ban& b : bans(now)) {
        out << "ban " << b.key << " " << b.until << " " << b.failures << "\n";
    }
    for (const auto& e : addresses_.entries(now, policy_.window)) {
        out << "addr " << e.key << " " << e.count << " " << e.start << "\n";
    }
    for (const auto& e : users_.entries(now, policy_.window)) {
        out << "user " << percentEncode(e.key) << " " << e.count << " " << e.start << "\n";
    }
    return out.str();
}

std::size_t BanList::load(std::string_view text, std::int64_t now) {
    std::size_t bad = 0;
    std::istringstream in{std::string(text)};
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') {
            continue;
        }
        std::istringstream fields(line);
        std::string kind, key;
        long long a = 0, b = 0;
        std::string rest;
        if (!(fields >> kind >> key >> a >> b) || (fields >> rest) || a < 0 || b < 0) {
            ++bad;
            continue;
        }
        if (kind == "ban") {
            // Keys are re-derived: a changed ipv6_prefix must not leave unliftable entries.
            if (!parseCidr(key)) {
                ++bad;
            } else if (a > now) {
                insertBan(keyOf(key), a, static_cast<unsigned>(std::min<long long>(b, UINT32_MAX)));
            }
        } else if (kind == "addr") {
            if (!parseCidr(key)) {
                ++bad;
            } else if (now - b < policy_.window && b <= now) {
                addresses_.restore(keyOf(key), static_cast<unsigned>(std::min<long long>(a, UINT32_MAX)), b);
            }
        } else if (kind == "user") {
            std::string name;
            if (!percentDecode(key, name)) {
                ++bad;
            } else if (now - b < policy_.window && b <= now) {
                users_.restore(name, static_cast<unsigned>(std::min<long long>(a, UINT32_MAX)), b);
            }
        } else {
            ++bad;
        }
    }
    dirty_ = false;
    return bad;
}

}  // namespace subproxy
