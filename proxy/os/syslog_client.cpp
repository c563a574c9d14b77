#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "os/syslog_client.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>

namespace subproxy {

namespace {

constexpr const char* kPath = "/dev/log";  // _PATH_LOG
std::atomic<int> pid{0};
std::atomic<int> facilityBits{LOG_USER};
std::atomic<int> sock{-1};
std::mutex reconnecting;
std::chrono::steady_clock::time_point lastTry{};

void forgetPid() { pid.store(0); }

// With `reconnecting` held.
void connectLocked() {
    lastTry = std::chrono::steady_clock::now();
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return;
    }
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::strncpy(sun.sun_path, kPath, sizeof sun.sun_path - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
        ::close(fd);
        return;
    }
    const int old = sock.exchange(fd);
    if (old >= 0) {
        ::close(old);
    }
}

// The socket broke (the syslog daemon restarted) or never connected: try again, but at most
// once a second, so that logging without a syslog daemon costs one failed send per line.
void reconnect(int broken) {
    std::lock_guard<std::mutex> lock(reconnecting);
    if (sock.load() != broken) {
        return;  // another thread already did
    }
    if (std::chrono::steady_clock::now() - lastTry < std::chrono::seconds(1)) {
        return;
    }
    connectLocked();
}

}  // namespace

int cachedPid() {
    int p = pid.load(std::memory_order_relaxed);
    if (p == 0) {
        static const int registered = pthread_atfork(nullptr, nullptr, forgetPid);
        (void)registered;
        p = static_cast<int>(::getpid());
        pid.store(p, std::memory_order_relaxed);
    }
    return p;
}

void syslogOpen(int facility) {
    facilityBits.store(facility & LOG_FACMASK);
    std::lock_guard<std::mutex> lock(reconnecting);
    connectLocked();
}

void syslogLine(int priority, const std::string& text) {
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    ::localtime_r(&now, &local);
    char head[64];
    const int n = std::snprintf(head, sizeof head, "<%d>", facilityBits.load() | (priority & LOG_PRIMASK));
    std::size_t len = static_cast<std::size_t>(n);
    len += std::strftime(head + len, sizeof head - len, "%b %e %T ", &local);
    std::string datagram;
    datagram.reserve(len + text.size() + 24);
    datagram.append(head, len).append("subproxy[").append(std::to_string(cachedPid())).append("]: ").append(text);
    int fd = sock.load();
    for (int attempt = 0; attempt < 2; ++attempt) {
        // Blocking, as glibc's: a line fail2ban needs is not dropped while journald catches up.
        if (fd >= 0 && ::send(fd, datagram.data(), datagram.size(), MSG_NOSIGNAL) >= 0) {
            return;
        }
        reconnect(fd);
        const int again = sock.load();
        if (again == fd) {
            return;  // not reconnected (too soon, or /dev/log is missing)
        }
        fd = again;
    }
}

}  // namespace subproxy
