// The credential cache (defence/credential_cache.h) as every event loop shares it: behind a
// lock, keyed by an HMAC-SHA-256 of login name and password under a key drawn at start-up, so
// that neither memory nor a core dump holds a password or a digest that would be useful
// anywhere else.  Nothing of it is ever written to disk.
#pragma once
#include <openssl/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "defence/credential_cache.h"
#include "io/locked.h"
#include "ops/config.h"

namespace subproxy {

class CredentialStore {
public:
    explicit CredentialStore(const AuthConfig& config);  // throws when no random key can be drawn
    void reconfigure(const AuthConfig& config);           // SIGHUP: emptied (the backend may have changed)

    bool enabled() const { return ttl_.load(std::memory_order_relaxed) > 0; }
    std::string digest(const std::string& login, const std::string& password) const;
    std::optional<std::string> find(const std::string& login, const std::string& digest);
    void put(const std::string& login, const std::string& digest, const std::string& backendUser);

private:
    struct MacCtxFree {
        void operator()(EVP_MAC_CTX* ctx) const;
    };
    // HMAC-SHA-256 with the key already set, fetched and keyed once: digest() copies it
    // rather than looking HMAC and SHA-256 up in the provider for every login (HMAC() does,
    // at 20k instructions a call).  Only ever read after the constructor, by every loop.
    std::unique_ptr<EVP_MAC_CTX, MacCtxFree> keyed_;
    std::atomic<int> ttl_;  // auth.cache_ttl: set by the control loop, read by every loop
    Locked<CredentialCache> cache_;
};

}  // namespace subproxy
