// OpenSSL contexts: the one presented to customers and the one used towards the MSA.
#pragma once
#include <openssl/ssl.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "ops/config.h"

namespace subproxy {

struct SslCtxFree {
    void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

struct SslFree {
    void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;

// A problem with one setting's file or value: `key` ("tls.cert") lets the caller name the
// configuration line.  A file that cannot be opened is told as "cannot read FILE: <errno>";
// one OpenSSL cannot use, with OpenSSL's reasons.
struct TlsSettingError : std::runtime_error {
    TlsSettingError(std::string settingKey, const std::string& message)
        : std::runtime_error(settingKey + ": " + message), key(std::move(settingKey)) {}
    std::string key;
};

// Both throw TlsSettingError (or std::runtime_error when OpenSSL itself fails).
SslCtxPtr makeServerContext(const TlsConfig& tls);
SslCtxPtr makeClientContext(const UpstreamConfig& upstream);

// A new SSL for the MSA, set up to verify `name` (host name or IP literal) and send SNI.
SslPtr makeUpstreamSsl(SSL_CTX* ctx, const std::string& name, bool verify);

// Customer side, for the log: why the handshake failed, in OpenSSL's words without the
// error codes ("no shared cipher"; `fallback` when no error in `errors`, as popped from
// libevent, has a reason), and what the ClientHello offered ("client offered TLSv1.0,
// ciphers: AES128-SHA, ...", or "no TLS ClientHello received"), as the server context
// recorded it.
struct HandshakeFailure {
    std::string reason;
    std::string offered;
};
HandshakeFailure describeHandshakeFailure(SSL* ssl, const std::vector<unsigned long>& errors,
                                          const std::string& fallback);
// The handshake succeeded: the recorded ClientHello is not needed any more (an idle session
// would keep it to the end).
void forgetClientHello(SSL* ssl);
// The protocol of an established session: "TLSv1.2" (the migration report).
std::string negotiatedVersion(const SSL* ssl);

// Drains OpenSSL's error queue into one line.
std::string opensslErrors();

}  // namespace subproxy
