#include "io/stream.h"

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

}  // namespace

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
        // close_notify (unless closeTls() sent it with the last reply), best effort: one
        // send, never a wait, no callback.
        if ((SSL_get_shutdown(ssl_.get()) & SSL_SENT_SHUTDOWN) == 0) {
            ERR_clear_error();
            SSL_shutdown(ssl_.get());
        }
        bool wrote = false;
        sendQueued(wrote);
    }
    event_.reset();  // before close: the event leaves epoll while the number is still ours
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

void Stream::write(std::string_view bytes) {
    if (bytes.empty() || (closeNotify_ && (SSL_get_shutdown(ssl_.get()) & SSL_SENT_SHUTDOWN) != 0)) {
        return;  // nothing can follow close_notify on the wire
    }
    (ssl_ ? plainOut_ : out_).append(bytes.data(), bytes.size());
    scheduleFlush();
}

void Stream::closeTls() {
    if (ssl_ && tlsUp_ && !failed_ && !closeNotify_) {
        closeNotify_ = true;
        scheduleFlush();
    }
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
        std::string().swap(out_);  // an emptied buffer is given back: idle sessions keep none
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
        std::string().swap(plainOut_);
    }
    if (closeNotify_ && tlsUp_ && (SSL_get_shutdown(ssl_.get()) & SSL_SENT_SHUTDOWN) == 0) {
        ERR_clear_error();
        SSL_shutdown(ssl_.get());  // into out_ behind the last record: one send for both
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
