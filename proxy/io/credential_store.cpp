#include "io/credential_store.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <ctime>
#include <stdexcept>

namespace subproxy {

namespace {

std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

}  // namespace

CredentialStore::CredentialStore(const AuthConfig& config)
    : ttl_(config.cacheTtl), cache_(static_cast<std::size_t>(config.cacheSize)) {
    if (RAND_bytes(key_, sizeof key_) != 1) {
        throw std::runtime_error("auth cache: no random key");
    }
}

void CredentialStore::reconfigure(const AuthConfig& config) {
    ttl_.store(config.cacheTtl);
    cache_.with([&](CredentialCache& c) {
        c.clear();
        c.setMax(static_cast<std::size_t>(config.cacheSize));
    });
}

std::string CredentialStore::digest(const std::string& login, const std::string& password) const {
    std::string message = login;
    message.push_back('\0');  // "ab"+"c" and "a"+"bc" differ
    message += password;
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    HMAC(EVP_sha256(), key_, sizeof key_, reinterpret_cast<const unsigned char*>(message.data()), message.size(),
         out, &length);
    OPENSSL_cleanse(message.data(), message.size());
    return std::string(reinterpret_cast<const char*>(out), length);
}

std::optional<std::string> CredentialStore::find(const std::string& login, const std::string& digest) {
    return cache_.with([&](CredentialCache& c) { return c.find(login, digest, now()); });
}

void CredentialStore::put(const std::string& login, const std::string& digest, const std::string& backendUser) {
    if (const int ttl = ttl_.load(); ttl > 0) {
        cache_.with([&](CredentialCache& c) { c.put(login, digest, backendUser, now() + ttl); });
    }
}

}  // namespace subproxy
