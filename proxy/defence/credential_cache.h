// The password backend's recent verdicts, as Dovecot's auth_cache and saslauthd -c keep them: a
// mail program that logs in every few minutes (and 5000 that log in again after an outage, the
// same accounts as before) is answered without Cyrus opening its database or asking saslauthd.
// Only successes are kept, one per login name, and only as a keyed digest of name and password
// (computed by the glue, credential_store.h): a wrong password, or a new one, still goes to the
// backend (and a wrong one to the guard).  Bounded (least recently used goes first) and timed
// (auth.cache_ttl).  Pure: no clock, no crypto, no locks.
#pragma once
#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>

namespace subproxy {

class CredentialCache {
public:
    explicit CredentialCache(std::size_t maxEntries) : max_(maxEntries) {}

    // The backend's user name for `login` when `digest` is the one it succeeded with and the
    // entry has not expired at `now`; nullopt otherwise (an expired entry is dropped).
    std::optional<std::string> find(const std::string& login, const std::string& digest, std::int64_t now);
    // The backend accepted `login` with the password behind `digest` as `backendUser`: kept
    // until `expires`, replacing what `login` had (a changed password replaces the old one).
    void put(const std::string& login, std::string digest, std::string backendUser, std::int64_t expires);
    void setMax(std::size_t maxEntries);  // 0: keep nothing
    void clear();
    std::size_t size() const { return map_.size(); }

private:
    struct Entry {
        std::string login;
        std::string digest;
        std::string backendUser;
        std::int64_t expires = 0;
    };
    void trim();

    std::size_t max_;
    std::list<Entry> lru_;  // most recently used first
    std::unordered_map<std::string, std::list<Entry>::iterator> map_;
};

}  // namespace subproxy
