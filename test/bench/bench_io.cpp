// bench_io.cpp — see bench_io.h.
#include "bench_io.h"

#include <openssl/err.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

namespace bench {

double nowSeconds() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

SslCtxPtr clientContext() {
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
    // Every session is a new customer: a full handshake, no resumption.
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}

SslCtxPtr serverContext(const std::string& cert, const std::string& key) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1) {
        std::fprintf(stderr, "loadgen: cannot load %s / %s\n", cert.c_str(), key.c_str());
        std::exit(2);
    }
    // Tickets as Postfix issues them (OpenSSL's default, two): a proxy's MSA leg resumes, as it
    // does against a real MSA (the load generator's own client never does).
    SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}

void raiseFdLimit() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

Conn::Conn(event_base* base, int fd) : fd_(fd) {
    // A TLS Finished followed at once by a command would otherwise wait for the peer's delayed
    // ACK (Nagle): 40 ms per session that belong to neither proxy.
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    readEv_ = event_new(base, fd, EV_READ | EV_PERSIST, &Conn::callback, this);
    writeEv_ = event_new(base, fd, EV_WRITE, &Conn::callback, this);
    event_add(readEv_, nullptr);
}

Conn::~Conn() {
    event_free(readEv_);
    event_free(writeEv_);
    if (ssl_ != nullptr) {
        SSL_free(ssl_);
    }
    close(fd_);
}

void Conn::watchWrite() {
    connecting_ = true;
    event_add(writeEv_, nullptr);
}

void Conn::startTls(SSL_CTX* ctx, bool server) {
    ssl_ = SSL_new(ctx);
    SSL_set_fd(ssl_, fd_);
    tlsServer_ = server;
    if (server) {
        SSL_set_accept_state(ssl_);
    } else {
        SSL_set_connect_state(ssl_);
    }
    handshaking_ = true;
    if (!server && !handshake()) {
        onClosed("tls handshake");
    }
}

void Conn::callback(evutil_socket_t, short what, void* arg) { static_cast<Conn*>(arg)->handle(what); }

void Conn::handle(short what) {
    if (connecting_) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
        connecting_ = false;
        if (err != 0) {
            onClosed(err == ECONNREFUSED ? "connect refused" : "connect failed");
            return;
        }
        onConnected();
        return;
    }
    if (handshaking_) {
        if (!handshake()) {
            onClosed("tls handshake");
            return;
        }
        // A client's first command may already wait behind its Finished message: the server
        // side reads on (the client side has sent its EHLO in onTlsReady).
        if (handshaking_ || !tlsServer_) {
            return;
        }
        what = EV_READ;
    }
    if ((what & EV_WRITE) != 0 && !flush()) {
        onClosed("write failed");
        return;
    }
    if ((what & EV_READ) != 0) {
        size_t before = in_.size();
        bool open = readAll();
        if (in_.size() > before) {
            onReadable();  // may delete this: nothing below touches members after a close
            return;
        }
        if (!open) {
            onClosed("closed");
        }
    }
}

// Drives the handshake; true while it is going or done, false when it failed.
bool Conn::handshake() {
    ERR_clear_error();
    int rc = SSL_do_handshake(ssl_);
    if (rc == 1) {
        handshaking_ = false;
        if (!tlsServer_) {
            onTlsReady();
        }
        return true;
    }
    int err = SSL_get_error(ssl_, rc);
    if (err == SSL_ERROR_WANT_WRITE) {
        event_add(writeEv_, nullptr);
        return true;
    }
    return err == SSL_ERROR_WANT_READ;
}

bool Conn::send(const char* data, size_t len) {
    out_.append(data, len);
    return flush();
}

bool Conn::flush() {
    while (!out_.empty()) {
        ssize_t n;
        if (ssl_ != nullptr) {
            ERR_clear_error();
            int rc = SSL_write(ssl_, out_.data(), static_cast<int>(out_.size()));
            if (rc <= 0) {
                int err = SSL_get_error(ssl_, rc);
                if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
                    event_add(writeEv_, nullptr);
                    return true;
                }
                return false;
            }
            n = rc;
        } else {
            n = ::send(fd_, out_.data(), out_.size(), MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    event_add(writeEv_, nullptr);
                    return true;
                }
                return false;
            }
        }
        out_.erase(0, static_cast<size_t>(n));
    }
    return true;
}

// Reads everything available into in_; false at EOF or on an error.
bool Conn::readAll() {
    char buf[16384];
    for (;;) {
        if (ssl_ != nullptr) {
            ERR_clear_error();
            int rc = SSL_read(ssl_, buf, sizeof buf);
            if (rc > 0) {
                in_.append(buf, static_cast<size_t>(rc));
                continue;
            }
            int err = SSL_get_error(ssl_, rc);
            if (err == SSL_ERROR_WANT_WRITE) {
                event_add(writeEv_, nullptr);
                return true;
            }
            return err == SSL_ERROR_WANT_READ;
        }
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n > 0) {
            in_.append(buf, static_cast<size_t>(n));
            if (static_cast<size_t>(n) < sizeof buf) {
                return true;  // drained: saves the recv that would say EAGAIN
            }
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return true;
        }
        return false;
    }
}

bool takeLine(std::string& buf, std::string& line) {
    size_t eol = buf.find('\n');
    if (eol == std::string::npos) {
        return false;
    }
    size_t end = (eol > 0 && buf[eol - 1] == '\r') ? eol - 1 : eol;
    line.assign(buf, 0, end);
    buf.erase(0, eol + 1);
    return true;
}

int takeReply(std::string& buf) {
    size_t pos = 0;
    for (;;) {
        size_t eol = buf.find('\n', pos);
        if (eol == std::string::npos) {
            return 0;
        }
        if (eol - pos < 4 || buf[pos] < '2' || buf[pos] > '5') {
            return -1;
        }
        if (buf[pos + 3] != '-') {
            int code = std::atoi(buf.substr(pos, 3).c_str());
            buf.erase(0, eol + 1);
            return code;
        }
        pos = eol + 1;
    }
}

}  // namespace bench
