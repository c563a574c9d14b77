// A TCP socket, plain or under TLS, for both legs of a session: the libevent glue the engines
// run on, in place of bufferevents (issue 10: they cost an epoll_ctl pair per reply and an
// ioctl(FIONREAD) per read).
//   - One edge-triggered event per socket (EV_READ|EV_WRITE|EV_ET|EV_PERSIST), registered
//     once: no read/write interest is toggled afterwards.  Writability matters only when a
//     write came back short, and the edge says when the kernel has room again.
//   - Writes are queued and go out once per loop turn (event_active, no system call), so the
//     replies to a pipelined group leave in one write(2) and, under TLS, in one record.
//   - A read(2) that comes back short has emptied the socket: the next bytes raise a new edge,
//     so no read ends in EAGAIN.
//   - OpenSSL runs over our own buffers through a small BIO: it never touches the socket, and
//     its output joins the one output queue.  SSL_MODE_RELEASE_BUFFERS (tls.cpp) keeps an idle
//     session's TLS state small.
// Callbacks come only from the loop, never from inside a call on the stream, and a callback
// may destroy the stream.
#pragma once
#include <event2/event.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/event_handles.h"
#include "io/tls.h"

namespace subproxy {

enum class StreamEvent {
    Connected,       // an outgoing connection is up
    TlsEstablished,  // the handshake finished
    Eof,             // the peer closed (or sent close_notify)
    Error,           // socket or TLS error: socketError(), tlsErrors()
    Timeout,         // no input for the idle timeout, or the close deadline passed
};

class StreamEvents {
public:
    virtual ~StreamEvents() = default;
    virtual void streamData(std::string_view bytes) = 0;  // plaintext, as it came
    // Output fell to the low watermark (0: all of it is in the kernel) after a write.
    virtual void streamWritten() = 0;
    virtual void streamEvent(StreamEvent what) = 0;
};

class Stream {
public:
    // An accepted socket; the stream owns `fd` from here on.
    Stream(event_base* base, evutil_socket_t fd, StreamEvents& events);
    // A non-blocking connect to `address`; nullptr with `error` (errno) when it cannot start.
    static std::unique_ptr<Stream> connect(event_base* base, const sockaddr* address, socklen_t length,
                                           StreamEvents& events, int& error);
    ~Stream();  // sends close_notify under TLS, then closes the socket
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;

    void write(std::string_view bytes);
    // Under TLS: close_notify queued behind what is queued, so that the last reply and the
    // alert leave in one send (the destructor then has nothing more to say).  Nothing may be
    // written after it.  Without TLS, or before the handshake finished: nothing.
    void closeTls();
    // Bytes not yet handed to the kernel (queued plaintext included).
    std::size_t outputPending() const { return out_.size() - outOff_ + plainOut_.size(); }
    void setLowWater(std::size_t bytes) { lowWater_ = bytes; }
    // Reading on or off; when off the kernel buffers, the peer's window closes (backpressure).
    void setReading(bool on);
    bool reading() const { return reading_; }
    // Timeout after `seconds` without input while reading is on; 0: none.
    void setIdleTimeout(int seconds);
    // A Timeout event after `seconds` whatever comes in (a close that waits for its output).
    void setDeadline(int seconds);
    // Starts TLS over this socket.  `received`: bytes already read that belong to the
    // handshake (a ClientHello that came before any greeting).  False if OpenSSL fails.
    bool startTls(SslPtr ssl, bool accepting, std::string_view received = {});
    SSL* ssl() const { return ssl_.get(); }
    bool tlsEstablished() const { return tlsUp_; }
    // After an Error event: errno of the socket (0 if none) and OpenSSL's error codes.
    int socketError() const { return socketError_; }
    const std::vector<unsigned long>& tlsErrors() const { return tlsErrors_; }

private:
    Stream(event_base* base, evutil_socket_t fd, StreamEvents& events, bool connecting);
    static void eventCb(evutil_socket_t, short what, void* self);
    static void timerCb(evutil_socket_t, short, void* self);
    void onEvent(short what);
    bool finishConnect(short what);
    bool readSocket();
    bool feed(std::string_view wire);
    bool pumpTls();
    bool flush();
    void scheduleFlush();
    void armTimer();
    bool fail(StreamEvent what);  // reports `what`; always false: stop here
    // Runs a callback; false if it destroyed the stream.
    template <typename F>
    bool notify(F&& callback) {
        bool* gone = destroyed_;
        callback();
        return !*gone;
    }
    // Hands the queued bytes to the kernel; errno of a failed send, else 0.  `wrote`: any.
    int sendQueued(bool& wrote);
    void collectTlsErrors();

    friend struct StreamBio;
    int bioRead(char* out, int length);
    void bioWrite(const char* data, int length) { out_.append(data, static_cast<std::size_t>(length)); }

    event_base* base_;
    evutil_socket_t fd_;
    StreamEvents& events_;
    EventPtr event_;
    EventPtr timer_;
    SslPtr ssl_;
    std::string out_;         // wire bytes for the kernel (ciphertext under TLS)
    std::string plainOut_;    // under TLS: plaintext queued this loop turn, one record at flush
    std::string held_;        // wire bytes read before TLS began that belong to the handshake
    std::size_t outOff_ = 0;  // out_ before this has been sent
    std::string_view wireIn_; // what the BIO serves OpenSSL now
    std::size_t lowWater_ = 0;
    std::vector<unsigned long> tlsErrors_;
    int socketError_ = 0;
    int idleSeconds_ = 0;
    int deadlineSeconds_ = 0;
    bool connecting_ = false;
    bool reading_ = true;
    bool drained_ = true;          // the last read emptied the socket; wait for the next edge
    bool eof_ = false;
    bool tlsUp_ = false;
    bool flushScheduled_ = false;
    bool closeNotify_ = false;     // closeTls(): SSL_shutdown at the next flush
    bool kick_ = false;            // run the handshake on the next turn (we speak first)
    bool failed_ = false;
    bool* destroyed_ = nullptr;    // set by the destructor while a callback runs
};

}  // namespace subproxy
