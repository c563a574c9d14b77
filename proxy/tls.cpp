#include "tls.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <deque>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace subproxy {

std::string opensslErrors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        out += (out.empty() ? "" : "; ") + std::string(buf);
    }
    return out.empty() ? "unknown OpenSSL error" : out;
}

namespace {

bool isIpLiteral(const std::string& name) {
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

void commonOptions(SSL_CTX* ctx) {
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    // OpenSSL 3 reports a peer that closes without close_notify as a protocol error; SMTP
    // detects truncation itself (api-facts §1), so treat it as EOF.
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    // Idle sessions dominate (customers think between messages): give the ~34 KiB of record
    // buffers back while a connection is quiet.
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
}

// Client-side TLS session resumption towards the MSA.  A full handshake per customer session
// was most of the proxy's CPU; a resumed one costs a fraction.  Sessions are kept per verified
// name (the ticket was issued by a peer verified for that name), used once each (TLS 1.3
// tickets are single-use), and owned by the SSL_CTX through ex_data, so they die with it.
class ResumptionCache {
public:
    ~ResumptionCache() {
        for (auto& [name, sessions] : saved_) {
            for (SSL_SESSION* s : sessions) {
                SSL_SESSION_free(s);
            }
        }
    }

    void save(const std::string& name, SSL_SESSION* session) {
        if (saved_.size() >= kMaxNames && !saved_.count(name)) {
            return;  // host = "original" could name any address: stay bounded
        }
        auto& sessions = saved_[name];
        sessions.push_back(session);
        if (sessions.size() > kPerName) {
            SSL_SESSION_free(sessions.front());
            sessions.pop_front();
        }
    }

    // A saved session for `name` (the caller owns the reference), or nullptr.
    SSL_SESSION* take(const std::string& name) {
        auto it = saved_.find(name);
        if (it == saved_.end() || it->second.empty()) {
            return nullptr;
        }
        SSL_SESSION* s = it->second.back();  // the newest is the least likely to have expired
        it->second.pop_back();
        return s;
    }

private:
    static constexpr std::size_t kMaxNames = 256;
    static constexpr std::size_t kPerName = 4;
    std::unordered_map<std::string, std::deque<SSL_SESSION*>> saved_;
};

void freeCache(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { delete static_cast<ResumptionCache*>(ptr); }
void freeName(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { delete static_cast<std::string*>(ptr); }

int cacheIndex() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, &freeCache);
    return index;
}

int nameIndex() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, &freeName);
    return index;
}

int onNewSession(SSL* ssl, SSL_SESSION* session) {
    auto* cache = static_cast<ResumptionCache*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), cacheIndex()));
    auto* name = static_cast<std::string*>(SSL_get_ex_data(ssl, nameIndex()));
    if (!cache || !name) {
        return 0;
    }
    cache->save(*name, session);
    return 1;  // we keep the reference
}

}  // namespace

SslCtxPtr makeServerContext(const TlsConfig& tls) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) {
        throw std::runtime_error("cannot create TLS context: " + opensslErrors());
    }
    commonOptions(ctx.get());
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), tls.cert.c_str()) != 1) {
        throw std::runtime_error("tls.cert " + tls.cert + ": " + opensslErrors());
    }
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), tls.key.c_str(), SSL_FILETYPE_PEM) != 1) {
        throw std::runtime_error("tls.key " + tls.key + ": " + opensslErrors());
    }
    if (SSL_CTX_check_private_key(ctx.get()) != 1) {
        throw std::runtime_error("tls.key " + tls.key + " does not match tls.cert " + tls.cert);
    }
    if (!tls.ciphers.empty() && SSL_CTX_set_cipher_list(ctx.get(), tls.ciphers.c_str()) != 1) {
        throw std::runtime_error("tls.ciphers: " + opensslErrors());
    }
    return ctx;
}

SslCtxPtr makeClientContext(const UpstreamConfig& upstream) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) {
        throw std::runtime_error("cannot create TLS context: " + opensslErrors());
    }
    commonOptions(ctx.get());
    if (upstream.verify) {
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
        if (SSL_CTX_load_verify_locations(ctx.get(), upstream.caFile.c_str(), nullptr) != 1) {
            throw std::runtime_error("upstream.ca_file " + upstream.caFile + ": " + opensslErrors());
        }
    } else {
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
    }
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx.get(), &onNewSession);
    SSL_CTX_set_ex_data(ctx.get(), cacheIndex(), new ResumptionCache);
    return ctx;
}

SslPtr makeUpstreamSsl(SSL_CTX* ctx, const std::string& name, bool verify) {
    SslPtr ssl(SSL_new(ctx));
    if (!ssl) {
        return ssl;
    }
    SSL_set_ex_data(ssl.get(), nameIndex(), new std::string(name));
    if (auto* cache = static_cast<ResumptionCache*>(SSL_CTX_get_ex_data(ctx, cacheIndex()))) {
        if (SSL_SESSION* saved = cache->take(name)) {
            SSL_set_session(ssl.get(), saved);
            SSL_SESSION_free(saved);
        }
    }
    if (isIpLiteral(name)) {
        if (verify) {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), name.c_str());
        }
    } else {
        SSL_set_tlsext_host_name(ssl.get(), name.c_str());
        if (verify) {
            SSL_set_hostflags(ssl.get(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            SSL_set1_host(ssl.get(), name.c_str());
        }
    }
    return ssl;
}

}  // namespace subproxy
