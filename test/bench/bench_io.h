// bench_io.h — the event-driven connection used by the load generator and the upstream sink
// (test/bench/, `make bench`).  Plain non-blocking sockets and bare SSL objects on libevent
// events rather than bufferevents: the load generator must cost less per session than the
// proxies it measures, so it does no copies, no per-reply allocations and no certificate checks.
#pragma once

#include <event2/event.h>
#include <openssl/ssl.h>

#include <memory>
#include <string>

namespace bench {

struct EventBaseFree {
    void operator()(event_base* b) const { event_base_free(b); }
};
struct SslCtxFree {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using EventBasePtr = std::unique_ptr<event_base, EventBaseFree>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

double nowSeconds();  // CLOCK_MONOTONIC

// A TLS 1.3-only client context that verifies nothing (the bench measures the proxies, not PKI).
SslCtxPtr clientContext();
// A server context with CERT/KEY (PEM); exits with a message when they cannot be loaded.
SslCtxPtr serverContext(const std::string& cert, const std::string& key);

// Raises RLIMIT_NOFILE to its hard limit: the idle test holds thousands of connections.
void raiseFdLimit();

// One socket, optionally under TLS.  The read event is persistent; the write event is armed only
// while output is left over after a write (the kernel buffer was full) or TLS asks for it.
// Subclasses get onReadable() when bytes are in in_, onClosed() when the peer went away.
class Conn {
public:
    Conn(event_base* base, int fd);
    virtual ~Conn();
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;

protected:
    // Queues TEXT and writes as much as the socket takes now.  False: the connection failed
    // (onClosed has not been called; the caller decides).
    bool send(const char* data, size_t len);
    bool send(const std::string& text) { return send(text.data(), text.size()); }
    // Starts TLS on the socket (after the STARTTLS exchange); the handshake runs inside the
    // event callbacks and onTlsReady() follows on the client side.
    void startTls(SSL_CTX* ctx, bool server);
    bool tls() const { return ssl_ != nullptr; }
    void watchWrite();  // connect(): the socket becomes writable when the connection is up

    virtual void onReadable() = 0;           // new bytes in in_
    virtual void onClosed(const char* why) = 0;  // EOF or error; the object may delete itself
    virtual void onTlsReady() {}
    virtual void onConnected() {}

    std::string in_;
    int fd_;

private:
    static void callback(evutil_socket_t fd, short what, void* arg);
    void handle(short what);
    bool flush();
    bool readAll();
    bool handshake();

    event* readEv_ = nullptr;
    event* writeEv_ = nullptr;
    SSL* ssl_ = nullptr;
    std::string out_;
    bool handshaking_ = false;
    bool tlsServer_ = false;
    bool connecting_ = false;
};

// Splits complete SMTP reply lines off the front of BUF.  Returns the code of the next complete
// reply (its last line "NNN "), 0 when it is not complete yet, -1 when the text is not SMTP.
int takeReply(std::string& buf);
// Takes one complete line (without CRLF) off the front of BUF; false when none is complete.
bool takeLine(std::string& buf, std::string& line);

}  // namespace bench
