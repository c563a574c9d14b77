#include "io/credential_store.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <ctime>
#include <new>
#include <stdexcept>

namespace subproxy {

namespace {

std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

}  // namespace

void CredentialStore::MacCtxFree::operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }

CredentialStore::CredentialStore(const AuthConfig& config)
    : ttl_(config.cacheTtl), cache_(static_cast<std::size_t>(config.cacheSize)) {
    unsigned char key[32];
    if (RAND_bytes(key, sizeof key) != 1) {
        throw std::runtime_error("auth cache: no random key");
    }
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    keyed_.reset(mac ? EVP_MAC_CTX_new(mac) : nullptr);
    EVP_MAC_free(mac);  // the context keeps its own reference
    char sha256[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, sha256, 0),
                                 OSSL_PARAM_construct_end()};
    const bool keyed = keyed_ && EVP_MAC_init(keyed_.get(), key, sizeof key, params) == 1;
    OPENSSL_cleanse(key, sizeof key);  // from here on only inside the MAC context
    if (!keyed) {
        throw std::runtime_error("auth cache: no HMAC-SHA-256");
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
    const std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx(EVP_MAC_CTX_dup(keyed_.get()));
    const unsigned char separator = 0;  // "ab"+"c" and "a"+"bc" differ
    unsigned char out[EVP_MAX_MD_SIZE];
    std::size_t length = 0;
    if (!ctx || EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(login.data()), login.size()) != 1 ||
        EVP_MAC_update(ctx.get(), &separator, 1) != 1 ||
        EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(password.data()), password.size()) != 1 ||
        EVP_MAC_final(ctx.get(), out, &length, sizeof out) != 1) {
        throw std::bad_alloc();  // a copy of a keyed context fails only for want of memory
    }
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
