#include "io/tls.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "wire/tls_hello.h"

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

// OpenSSL reports a file it cannot open as a stack ("error:80000002:system library::No such
// file or directory; error:10080002:BIO routines::system lib; ..."): open it first, and say
// what errno says.
void requireReadable(const std::string& key, const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        throw TlsSettingError(key, "cannot read " + path + ": " + std::strerror(errno));
    }
    struct stat st {};
    const bool directory = ::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
    ::close(fd);
    if (directory) {
        throw TlsSettingError(key, "cannot read " + path + ": " + std::strerror(EISDIR));
    }
}

bool isIpLiteral(const std::string& name) {
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

// Mozilla's server-side TLS profiles (wiki.mozilla.org/Security/Server_Side_TLS, v5.7), in
// OpenSSL names, for TLS 1.2 and below (TLS 1.3 suites stay OpenSSL's defaults, all AEAD).
// "intermediate": forward secrecy and AEAD only, so no CBC (LUCKY13) and no static RSA.
constexpr const char* kIntermediateCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";
// "old": what TLS 1.0/1.1 clients can speak (no AEAD before TLS 1.2): CBC suites, static RSA,
// and 3DES for Windows XP's SChannel, which has no AES.  Only with min_protocol below 1.2.
constexpr const char* kOldCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:"
    "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:"
    "DHE-RSA-AES128-SHA256:DHE-RSA-AES256-SHA256:AES128-GCM-SHA256:AES256-GCM-SHA384:"
    "AES128-SHA256:AES256-SHA256:AES128-SHA:AES256-SHA:DES-CBC3-SHA";

int protocolVersion(TlsProtocol p) {
    switch (p) {
    case TlsProtocol::Tls1_0:
        return TLS1_VERSION;
    case TlsProtocol::Tls1_1:
        return TLS1_1_VERSION;
    case TlsProtocol::Tls1_2:
        return TLS1_2_VERSION;
    case TlsProtocol::Tls1_3:
        return TLS1_3_VERSION;
    }
    return TLS1_2_VERSION;
}

// The customer's ClientHello as OpenSSL parsed it, kept on the SSL until the handshake ends:
// when it fails, the log says what the client offered (describeHandshakeFailure).  Raw bytes
// only; names are looked up on failure, which is rare.
struct RecordedHello {
    int legacyVersion = 0;
    std::string supportedVersions;  // the extension body, or empty
    std::string ciphers;            // 2-byte cipher suite values
};

void freeHello(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { delete static_cast<RecordedHello*>(ptr); }

int helloIndex() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, &freeHello);
    return index;
}

int onClientHello(SSL* ssl, int*, void*) {
    auto* hello = static_cast<RecordedHello*>(SSL_get_ex_data(ssl, helloIndex()));
    if (!hello) {
        hello = new RecordedHello;
        if (SSL_set_ex_data(ssl, helloIndex(), hello) != 1) {
            delete hello;
            return SSL_CLIENT_HELLO_SUCCESS;  // only the log line loses its detail
        }
    }
    hello->legacyVersion = static_cast<int>(SSL_client_hello_get0_legacy_version(ssl));
    const unsigned char* data = nullptr;
    std::size_t length = SSL_client_hello_get0_ciphers(ssl, &data);
    hello->ciphers.assign(reinterpret_cast<const char*>(data), data ? length : 0);
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &data, &length) == 1) {
        hello->supportedVersions.assign(reinterpret_cast<const char*>(data), length);
    } else {
        hello->supportedVersions.clear();
    }
    return SSL_CLIENT_HELLO_SUCCESS;
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
    requireReadable("tls.cert", tls.cert);
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), tls.cert.c_str()) != 1) {
        throw TlsSettingError("tls.cert", tls.cert + ": " + opensslErrors());
    }
    requireReadable("tls.key", tls.key);
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), tls.key.c_str(), SSL_FILETYPE_PEM) != 1) {
        throw TlsSettingError("tls.key", tls.key + ": " + opensslErrors());
    }
    if (SSL_CTX_check_private_key(ctx.get()) != 1) {
        throw TlsSettingError("tls.key", tls.key + " does not match tls.cert " + tls.cert);
    }
    const bool legacy = tls.minProtocol < TlsProtocol::Tls1_2;
    if (legacy) {
        // OpenSSL 3 refuses TLS 1.0/1.1 at security level 1 and up (their handshake signs
        // with SHA-1/MD5): level 0, only because the operator asked for those clients.
        SSL_CTX_set_security_level(ctx.get(), 0);
    }
    SSL_CTX_set_min_proto_version(ctx.get(), protocolVersion(tls.minProtocol));
    const std::string ciphers = !tls.ciphers.empty() ? tls.ciphers : legacy ? kOldCiphers : kIntermediateCiphers;
    if (SSL_CTX_set_cipher_list(ctx.get(), ciphers.c_str()) != 1) {
        throw TlsSettingError("tls.ciphers", opensslErrors());
    }
    // Our order, not the client's: an old client that lists CBC first still gets GCM when it
    // has it; one that lists ChaCha20 first (a phone without AES instructions) keeps it.  The
    // DHE suites need DH parameters: the RFC 7919 group matching the key size.
    SSL_CTX_set_options(ctx.get(), SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
    SSL_CTX_set_dh_auto(ctx.get(), 1);
    SSL_CTX_set_client_hello_cb(ctx.get(), &onClientHello, nullptr);
    return ctx;
}

void forgetClientHello(SSL* ssl) {
    delete static_cast<RecordedHello*>(SSL_get_ex_data(ssl, helloIndex()));
    SSL_set_ex_data(ssl, helloIndex(), nullptr);
}

std::string negotiatedVersion(const SSL* ssl) { return tlsVersionName(SSL_version(ssl)); }

HandshakeFailure describeHandshakeFailure(SSL* ssl, const std::vector<unsigned long>& errors,
                                          const std::string& fallback) {
    // OpenSSL's reason alone ("no shared cipher", "unsupported protocol"): the library and
    // function parts of "error:0A0000C1:SSL routines::no shared cipher" tell a mail operator
    // nothing.  libevent mixes raw SSL_get_error() codes into its list; they have no reason.
    HandshakeFailure out{fallback, "no TLS ClientHello received"};
    for (unsigned long e : errors) {
        if (const char* text = ERR_reason_error_string(e)) {
            out.reason = text;
            break;
        }
    }
    const auto* hello = static_cast<const RecordedHello*>(SSL_get_ex_data(ssl, helloIndex()));
    if (!hello) {
        return out;
    }
    ClientHelloSummary summary;
    summary.legacyVersion = hello->legacyVersion;
    summary.supportedVersions = parseSupportedVersions(hello->supportedVersions);
    for (std::size_t i = 0; i + 1 < hello->ciphers.size(); i += 2) {
        const int value = (static_cast<unsigned char>(hello->ciphers[i]) << 8) |
                          static_cast<unsigned char>(hello->ciphers[i + 1]);
        if (!isGrease(value)) {
            summary.cipherSuites.push_back(value);
        }
    }
    const auto name = [ssl](int value) {
        const unsigned char bytes[2] = {static_cast<unsigned char>(value >> 8), static_cast<unsigned char>(value)};
        // Suites OpenSSL does not know (or has compiled out) still show, by number.
        const SSL_CIPHER* cipher = SSL_CIPHER_find(ssl, bytes);
        return cipher ? std::string(SSL_CIPHER_get_name(cipher)) : hex16(value);
    };
    out.offered = describeClientHello(summary, name);
    return out;
}

SslCtxPtr makeClientContext(const UpstreamConfig& upstream) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) {
        throw std::runtime_error("cannot create TLS context: " + opensslErrors());
    }
    commonOptions(ctx.get());
    if (upstream.verify) {
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
        requireReadable("upstream.ca_file", upstream.caFile);
        if (SSL_CTX_load_verify_locations(ctx.get(), upstream.caFile.c_str(), nullptr) != 1) {
            throw TlsSettingError("upstream.ca_file", upstream.caFile + ": " + opensslErrors());
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
