#include "io/stream.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace subproxy {

namespace {

// One read(2) takes at most this much; a shorter read emptied the socket.  It is also the
// size of one TLS record's plaintext, so a full read decrypts in a few SSL_read calls.
constexpr std::size_t kReadSize = 16 * 1024;
// An emptied output buffer bigger than this is given back: idle sessions keep no buffers.
constexpr std::size_t kKeepCapacity = 512;

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

Stream::Stream(event_base* base, evutil_socket_t fd, StreamEvents& events) : Stream(base, fd, events, false) {}

Stream::Stream(event_base* base, evutil_socket_t fd, StreamEvents& events, bool connecting)
    : base_(base),
      fd_(fd),
      events_(events),
      event_(event_new(base, fd, EV_READ | EV_WRITE | EV_ET | EV_PERSIST, &Stream::eventCb, this)),
      connecting_(connecting),
      drained_(connecting) {
    if (fd_ >= 0) {
        // Registered once, edge-triggered: a socket that is readable (or connected) already
        // raises its first edge at once.
        event_add(event_.get(), nullptr);
    }
}

std::unique_ptr<Stream> Stream::connect(event_base* base, const sockaddr* address, socklen_t length,
                                        StreamEvents& events, int& error) {
    const int fd = ::socket(address->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error = errno;
        return nullptr;
    }
    if (::connect(fd, address, length) != 0 && errno != EINPROGRESS) {
        // Refused at once (loopback): told from the loop like any other failure, never from
        // inside the caller's own call.
        const int err = errno;
        ::close(fd);
        std::unique_ptr<Stream> stream(new Stream(base, -1, events, true));
        stream->socketError_ = err;
        event_active(stream->event_.get(), EV_WRITE, 0);
        return stream;
    }
    return std::unique_ptr<Stream>(new Stream(base, fd, events, true));
}

Stream::~Stream() {
    if (destroyed_) {
        *destroyed_ = true;
    }
    if (ssl_ && tlsUp_ && fd_ >= 0 && !failed_) {
        // close_notify, best effort: one send, never a wait, no callback.
        ERR_clear_error();
        SSL_shutdown(ssl_.get());
        bool wrote = false;
        sendQueued(wrote);
    }
    event_.reset();  // before close: the event leaves epoll while the number is still ours
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

void Stream::write(std::string_view bytes) {
    if (bytes.empty()) {
        return;
    }
    (ssl_ ? plainOut_ : out_).append(bytes.data(), bytes.size());
    scheduleFlush();
}

void Stream::scheduleFlush() {
    if (!flushScheduled_) {
        flushScheduled_ = true;
        event_active(event_.get(), EV_WRITE, 0);  // later in this loop turn, with the others
    }
}

void Stream::setReading(bool on) {
    if (on == reading_) {
        return;
    }
    reading_ = on;
    if (on && (!drained_ || !held_.empty())) {
        event_active(event_.get(), EV_READ, 0);  // the edge was spent while we paused
    }
    armTimer();
}

void Stream::setIdleTimeout(int seconds) {
    idleSeconds_ = seconds;
    armTimer();
}

void Stream::setDeadline(int seconds) {
    deadlineSeconds_ = seconds;
    if (!timer_) {
        timer_.reset(evtimer_new(base_, &Stream::timerCb, this));
    }
    const timeval deadline{seconds, 0};
    evtimer_add(timer_.get(), &deadline);
}

void Stream::armTimer() {
    if (deadlineSeconds_ > 0) {
        return;  // a close deadline runs whatever comes in
    }
    if (idleSeconds_ <= 0 || !reading_ || failed_) {
        if (timer_) {
            evtimer_del(timer_.get());
        }
        return;
    }
    if (!timer_) {
        timer_.reset(evtimer_new(base_, &Stream::timerCb, this));
    }
    const timeval idle{idleSeconds_, 0};
    evtimer_add(timer_.get(), &idle);  // a heap operation, no system call
}

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

void Stream::eventCb(evutil_socket_t, short what, void* self) { static_cast<Stream*>(self)->onEvent(what); }

void Stream::timerCb(evutil_socket_t, short, void* self) {
    auto* stream = static_cast<Stream*>(self);
    bool dead = false;
    stream->destroyed_ = &dead;
    stream->events_.streamEvent(StreamEvent::Timeout);  // may destroy the stream
    if (!dead) {
        stream->destroyed_ = nullptr;
    }
}

void Stream::onEvent(short what) {
    bool dead = false;
    destroyed_ = &dead;
    const bool alive = [&] {
        if (connecting_ && !finishConnect(what)) {
            return false;
        }
        if ((what & EV_READ) && !failed_ && !connecting_) {
            drained_ = false;
            if (kick_) {
                kick_ = false;
                if (!feed({})) {  // the handshake, with what startTls was given
                    return false;
                }
            }
            if (!readSocket()) {
                return false;
            }
        }
        if (what & EV_WRITE) {
            flushScheduled_ = false;
            return flush();
        }
        return true;
    }();
    (void)alive;
    if (!dead) {
        destroyed_ = nullptr;
    }
}

bool Stream::finishConnect(short what) {
    if (socketError_ == 0) {
        int err = 0;
        socklen_t length = sizeof err;
        if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &length) != 0) {
            err = errno;
        }
        if (err == 0 && !(what & EV_WRITE)) {
            return true;  // not yet
        }
        socketError_ = err;
    }
    if (socketError_ != 0) {
        return fail(StreamEvent::Error);
    }
    connecting_ = false;
    drained_ = false;
    if (outputPending() > 0) {
        scheduleFlush();
    }
    return notify([this] { events_.streamEvent(StreamEvent::Connected); });
}

bool Stream::readSocket() {
    char buffer[kReadSize];
    while (reading_ && !drained_ && !failed_) {
        const ssize_t n = ::read(fd_, buffer, sizeof buffer);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                drained_ = true;
                return true;
            }
            socketError_ = errno;
            return fail(StreamEvent::Error);
        }
        // Short: the socket is empty now, and the next bytes raise a new edge.
        drained_ = static_cast<std::size_t>(n) < sizeof buffer;
        if (n == 0) {
            eof_ = true;
        } else {
            armTimer();  // input restarts the idle timeout
        }
        if (!feed(std::string_view(buffer, static_cast<std::size_t>(n)))) {
            return false;
        }
    }
    return true;
}

bool Stream::feed(std::string_view wire) {
    if (!ssl_) {
        if (!wire.empty() && !notify([&] { events_.streamData(wire); })) {
            return false;
        }
        if (eof_ && !failed_) {
            return fail(StreamEvent::Eof);
        }
        return !failed_;
    }
    std::string joined;  // bytes startTls was given go first
    if (!held_.empty()) {
        joined.swap(held_);
        joined.append(wire.data(), wire.size());
        wire = joined;
    }
    wireIn_ = wire;
    if (!pumpTls()) {
        return false;
    }
    wireIn_ = {};
    return true;
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
    char plain[kReadSize];
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

int Stream::sendQueued(bool& wrote) {
    while (outOff_ < out_.size()) {
        const ssize_t n = ::send(fd_, out_.data() + outOff_, out_.size() - outOff_, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : errno;  // EAGAIN: the next edge
        }
        outOff_ += static_cast<std::size_t>(n);
        wrote = true;
    }
    if (outOff_ == out_.size()) {
        outOff_ = 0;
        out_.clear();
        if (out_.capacity() > kKeepCapacity) {
            std::string().swap(out_);
        }
    } else if (outOff_ > out_.size() / 2) {
        out_.erase(0, outOff_);  // amortised: at most the unsent half moves
        outOff_ = 0;
    }
    return 0;
}

bool Stream::flush() {
    if (ssl_ && tlsUp_ && !plainOut_.empty()) {
        // The whole turn's replies as one record (SSL_write takes all: the BIO never blocks).
        ERR_clear_error();
        if (SSL_write(ssl_.get(), plainOut_.data(), static_cast<int>(plainOut_.size())) <= 0) {
            collectTlsErrors();
            return fail(StreamEvent::Error);
        }
        plainOut_.clear();
        if (plainOut_.capacity() > kKeepCapacity) {
            std::string().swap(plainOut_);
        }
    }
    if (connecting_ || fd_ < 0 || outOff_ == out_.size()) {
        return true;
    }
    bool wrote = false;
    if (const int err = sendQueued(wrote)) {
        socketError_ = err;
        return fail(StreamEvent::Error);
    }
    if (wrote && outputPending() <= lowWater_) {
        return notify([this] { events_.streamWritten(); });
    }
    return true;
}

bool Stream::fail(StreamEvent what) {
    failed_ = true;
    armTimer();
    notify([&] { events_.streamEvent(what); });
    return false;
}

}  // namespace subproxy
