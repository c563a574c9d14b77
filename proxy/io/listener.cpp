#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/listener.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "os/log.h"

namespace subproxy {

namespace {

struct FdGuard {
    int fd;
    ~FdGuard() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
    int release() {
        int f = fd;
        fd = -1;
        return f;
    }
};

// One descriptor held in reserve for the moment the process runs out: closing it lets the
// listener take the waiting connection and say 421, instead of leaving it in the backlog while
// accept() fails in a loop (nginx, HAProxy and libuv keep one the same way).
// One per process: the workers' listeners take it in turn.
std::atomic<int> reserveFd{-1};

void holdReserve() {
    if (reserveFd.load() >= 0) {
        return;
    }
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    int none = -1;
    if (fd >= 0 && !reserveFd.compare_exchange_strong(none, fd)) {
        ::close(fd);  // another worker took one back first
    }
}

// SO_REUSEPORT lets another process of the same user bind the port too, and the kernel would
// quietly split the customers between us.  A plain bind first says "address in use" instead.
void checkNotTaken(const sockaddr_storage& ss, socklen_t len, bool v6, const std::string& name) {
    FdGuard probe{::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    int one = 1;
    setsockopt(probe.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (v6) {
        setsockopt(probe.fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    if (probe.fd >= 0 && ::bind(probe.fd, reinterpret_cast<const sockaddr*>(&ss), len) != 0 && errno == EADDRINUSE) {
        throw std::runtime_error("listen " + name + ": bind: " + std::strerror(EADDRINUSE));
    }
}

// The listen address as a sockaddr; throws when it is not a numeric address of its family.
socklen_t listenAddress(const ListenerConfig& config, bool v6, const std::string& name, sockaddr_storage& ss) {
    if (v6) {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(static_cast<uint16_t>(config.port));
        if (inet_pton(AF_INET6, config.address.c_str(), &in6->sin6_addr) != 1) {
            throw std::runtime_error("listen " + name + ": not an IPv6 address");
        }
        return sizeof *in6;
    }
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(config.port));
    if (inet_pton(AF_INET, config.address.c_str(), &in->sin_addr) != 1) {
        throw std::runtime_error("listen " + name + ": not an IPv4 address");
    }
    return sizeof *in;
}

constexpr auto kReportInterval = std::chrono::seconds(10);
constexpr long kPauseMicros = 100 * 1000;  // sessions end meanwhile and give descriptors back

}  // namespace

std::string Listener::name() const {
    return (config_.address.find(':') != std::string::npos ? "[" + config_.address + "]" : config_.address) +
           ":" + std::to_string(config_.port);
}

Listener::Listener(event_base* base, const ListenerConfig& config, std::string busyReply, AcceptFn onAccept,
                   Sharing sharing)
    : config_(config), busyReply_(std::move(busyReply)), onAccept_(std::move(onAccept)) {
    sockaddr_storage ss{};
    const bool v6 = config.address.find(':') != std::string::npos;
    const socklen_t len = listenAddress(config, v6, name(), ss);
    if (sharing == Sharing::First) {
        checkNotTaken(ss, len, v6, name());
    }
    FdGuard fd{::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
    if (fd.fd < 0) {
        throw std::runtime_error("listen " + name() + ": socket: " + std::strerror(errno));
    }
    int one = 1;
    setsockopt(fd.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (sharing != Sharing::None && setsockopt(fd.fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        throw std::runtime_error("listen " + name() + ": SO_REUSEPORT: " + std::strerror(errno));
    }
    if (v6) {
        // "::" serves IPv6 only, so "0.0.0.0" and "::" can share a port (as nginx does).
        setsockopt(fd.fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    if (config.transparent) {
        const int rc = v6 ? setsockopt(fd.fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof one)
                          : setsockopt(fd.fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one);
        if (rc != 0) {
            throw std::runtime_error("listen " + name() + ": transparent (needs CAP_NET_ADMIN): " +
                                     std::strerror(errno));
        }
    }
    if (::bind(fd.fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        throw std::runtime_error("listen " + name() + ": bind: " + std::strerror(errno));
    }
    // A deep accept queue (net.core.somaxconn caps it): when mail programs reconnect all at once
    // and the queue overflows, Linux drops the handshake's last ACK (with SYN cookies, for
    // good), and a client that waits for our 220 hangs until its own timeout.
    if (::listen(fd.fd, SOMAXCONN) != 0) {
        throw std::runtime_error("listen " + name() + ": listen: " + std::strerror(errno));
    }
    // Backlog 0: listen() is done; -1 would make libevent call listen(fd, 128) again.
    // LEV_OPT_CLOSE_ON_EXEC: accept4() hands over sockets already non-blocking and close-on-exec,
    // so no fcntl per connection.
    listener_.reset(evconnlistener_new(base, &Listener::acceptCallback, this,
                                       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd.fd));
    if (!listener_) {
        throw std::runtime_error("listen " + name() + ": evconnlistener_new failed");
    }
    fd.release();
    evconnlistener_set_error_cb(listener_.get(), &Listener::errorCallback);
    resume_.reset(evtimer_new(base, &Listener::resumeCallback, this));
    holdReserve();
}

void Listener::enable(bool on) {
    if (on && paused_) {
        return;  // the back-off timer re-enables it
    }
    if (on) {
        evconnlistener_enable(listener_.get());
    } else {
        evconnlistener_disable(listener_.get());
    }
}

void Listener::acceptCallback(evconnlistener*, evutil_socket_t fd, sockaddr* peer, int len, void* self) {
    static_cast<Listener*>(self)->onAccept_(fd, peer, len);
}

void Listener::errorCallback(evconnlistener*, void* self) {
    static_cast<Listener*>(self)->acceptFailed(errno);
}

void Listener::acceptFailed(int error) {
    ++failuresSinceReport_;
    holdReserve();  // lost to another thread last time? take it back before it is needed
    if (const int spare = (error == EMFILE || error == ENFILE) ? reserveFd.exchange(-1) : -1; spare >= 0) {
        ::close(spare);
        const int fd = ::accept4(evconnlistener_get_fd(listener_.get()), nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
            [[maybe_unused]] ssize_t n = ::send(fd, busyReply_.data(), busyReply_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            ::close(fd);
            ++refusedSinceReport_;
        }
        holdReserve();
    }
    // Whatever the error, never spin on it: pause briefly, then listen again.
    paused_ = true;
    evconnlistener_disable(listener_.get());
    const timeval pause{0, kPauseMicros};
    evtimer_add(resume_.get(), &pause);
    const auto now = std::chrono::steady_clock::now();
    if (now - lastReport_ >= kReportInterval) {
        logWarning("accept on " + name() + ": " + std::strerror(error) + " (" + std::to_string(failuresSinceReport_) +
                   " failed accepts, " + std::to_string(refusedSinceReport_) +
                   " customers told 421 in the last interval); raise the file limit (LimitNOFILE=) or lower "
                   "limits.max_sessions");
        lastReport_ = now;
        failuresSinceReport_ = 0;
        refusedSinceReport_ = 0;
    }
}

void Listener::resumeCallback(evutil_socket_t, short, void* self) {
    auto* listener = static_cast<Listener*>(self);
    listener->paused_ = false;
    holdReserve();
    evconnlistener_enable(listener->listener_.get());
}

}  // namespace subproxy
