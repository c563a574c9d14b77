#include "defence/credential_cache.h"

namespace subproxy {

std::optional<std::string> CredentialCache::find(const std::string& login, const std::string& digest,
                                                 std::int64_t now) {
    const auto it = map_.find(login);
    if (it == map_.end()) {
        return std::nullopt;
    }
    const Entry& entry = *it->second;
    if (entry.expires <= now) {
        lru_.erase(it->second);
        map_.erase(it);
        return std::nullopt;
    }
    if (entry.digest != digest) {
        return std::nullopt;  // another password: the backend judges it
    }
    lru_.splice(lru_.begin(), lru_, it->second);
    return entry.backendUser;
}

void CredentialCache::put(const std::string& login, std::string digest, std::string backendUser,
                          std::int64_t expires) {
    if (max_ == 0) {
        return;
    }
    if (const auto it = map_.find(login); it != map_.end()) {
        lru_.erase(it->second);
        map_.erase(it);
    }
    lru_.push_front(Entry{login, std::move(digest), std::move(backendUser), expires});
    map_.emplace(login, lru_.begin());
    trim();
}

void CredentialCache::setMax(std::size_t maxEntries) {
    max_ = maxEntries;
    trim();
}

void CredentialCache::clear() {
    map_.clear();
    lru_.clear();
}

void CredentialCache::trim() {
    while (map_.size() > max_) {
        map_.erase(lru_.back().login);
        lru_.pop_back();
    }
}

}  // namespace subproxy
