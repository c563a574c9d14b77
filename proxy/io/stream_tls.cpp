// Stream, the TLS half: OpenSSL over the stream's own buffers (a BIO that never touches the
// socket), the handshake and the decrypting read loop.
#include <openssl/bio.h>
#include <openssl/err.h>

#include <algorithm>

#include "io/stream.h"

namespace subproxy {

namespace {

constexpr std::size_t kPlainChunk = 16 * 1024;  // one TLS record's plaintext at most

}  // namespace

// OpenSSL's view of the stream: reads come from the bytes just read from the socket, writes
// go to the output queue.  Never blocks, never makes a system call.
struct StreamBio {
    static BIO_METHOD* method() {
        static BIO_METHOD* const m = [] {
            BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "subproxy stream");
            BIO_meth_set_write(bm, &StreamBio::write);
            BIO_meth_set_read(bm, &StreamBio::read);
            BIO_meth_set_ctrl(bm, &StreamBio::ctrl);
            BIO_meth_set_create(bm, [](BIO* bio) {
                BIO_set_init(bio, 1);
                return 1;
            });
            return bm;
        }();
        return m;
    }
    static int write(BIO* bio, const char* data, int length) {
        static_cast<Stream*>(BIO_get_data(bio))->bioWrite(data, length);
        return length;
    }
    static int read(BIO* bio, char* out, int length) {
        BIO_clear_retry_flags(bio);
        const int n = static_cast<Stream*>(BIO_get_data(bio))->bioRead(out, length);
        if (n < 0) {
            BIO_set_retry_read(bio);
        }
        return n;
    }
    static long ctrl(BIO*, int cmd, long, void*) {
        return cmd == BIO_CTRL_FLUSH ? 1 : 0;  // nothing to flush: the stream writes the queue
    }
};

bool Stream::startTls(SslPtr ssl, bool accepting, std::string_view received) {
    BIO* bio = ssl ? BIO_new(StreamBio::method()) : nullptr;
    if (!bio) {
        return false;
    }
    BIO_set_data(bio, this);
    SSL_set_bio(ssl.get(), bio, bio);  // one reference, for both directions
    accepting ? SSL_set_accept_state(ssl.get()) : SSL_set_connect_state(ssl.get());
    ssl_ = std::move(ssl);
    held_.assign(received.data(), received.size());
    // A client speaks first; so does a server that already holds the ClientHello.
    if (!accepting || !held_.empty()) {
        kick_ = true;
        event_active(event_.get(), EV_READ, 0);
    }
    return true;
}

int Stream::bioRead(char* out, int length) {
    if (wireIn_.empty()) {
        return eof_ ? 0 : -1;
    }
    const std::size_t n = std::min(wireIn_.size(), static_cast<std::size_t>(length));
    std::copy_n(wireIn_.data(), n, out);
    wireIn_.remove_prefix(n);
    return static_cast<int>(n);
}

void Stream::collectTlsErrors() {
    tlsErrors_.clear();
    while (unsigned long e = ERR_get_error()) {
        tlsErrors_.push_back(e);
    }
}

bool Stream::pumpTls() {
    SSL* ssl = ssl_.get();
    ERR_clear_error();
    if (!tlsUp_) {
        const int rc = SSL_do_handshake(ssl);
        if (outputPending() > 0) {
            scheduleFlush();  // our handshake messages
        }
        if (rc != 1) {
            const int err = SSL_get_error(ssl, rc);
            if (err == SSL_ERROR_WANT_READ) {
                return true;
            }
            collectTlsErrors();
            return fail(eof_ && tlsErrors_.empty() ? StreamEvent::Eof : StreamEvent::Error);
        }
        tlsUp_ = true;
        if (!notify([this] { events_.streamEvent(StreamEvent::TlsEstablished); }) || failed_) {
            return false;
        }
        if (!plainOut_.empty()) {
            scheduleFlush();  // written while the handshake ran
        }
    }
    char plain[kPlainChunk];
    for (;;) {
        const int n = SSL_read(ssl, plain, sizeof plain);
        if (n > 0) {
            if (!notify([&] { events_.streamData(std::string_view(plain, static_cast<std::size_t>(n))); }) ||
                failed_) {
                return false;
            }
            continue;
        }
        const int err = SSL_get_error(ssl, n);
        if (outputPending() > 0) {
            scheduleFlush();  // alerts, tickets, key updates
        }
        if (err == SSL_ERROR_WANT_READ) {
            return true;
        }
        if (err == SSL_ERROR_ZERO_RETURN) {
            return fail(StreamEvent::Eof);
        }
        collectTlsErrors();
        return fail(eof_ && tlsErrors_.empty() ? StreamEvent::Eof : StreamEvent::Error);
    }
}

}  // namespace subproxy
