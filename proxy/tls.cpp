#include "tls.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <stdexcept>

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
    return ctx;
}

SslPtr makeUpstreamSsl(SSL_CTX* ctx, const std::string& name, bool verify) {
    SslPtr ssl(SSL_new(ctx));
    if (!ssl) {
        return ssl;
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
