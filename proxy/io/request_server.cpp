#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "io/request_server.h"

#include <event2/buffer.h>
#include <event2/event.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace subproxy {

namespace {

struct FdCloser {
    int fd;
    ~FdCloser() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

}  // namespace

RequestServer::RequestServer(event_base* base, Limits limits, Handler handler)
    : base_(base), limits_(std::move(limits)), handler_(std::move(handler)) {}

RequestServer::RequestServer(event_base* base, const std::string& address, int port, Limits limits, Handler handler)
    : RequestServer(base, std::move(limits), std::move(handler)) {
    const std::string name = (address.find(':') != std::string::npos ? "[" + address + "]" : address) + ":" +
                             std::to_string(port);
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (address.find(':') != std::string::npos) {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(static_cast<uint16_t>(port));
        len = inet_pton(AF_INET6, address.c_str(), &in6->sin6_addr) == 1 ? sizeof *in6 : 0;
    } else {
        auto* in = reinterpret_cast<sockaddr_in*>(&ss);
        in->sin_family = AF_INET;
        in->sin_port = htons(static_cast<uint16_t>(port));
        len = inet_pton(AF_INET, address.c_str(), &in->sin_addr) == 1 ? sizeof *in : 0;
    }
    if (len == 0) {
        throw std::runtime_error("cannot listen on " + name + ": not a numeric address");
    }
    FdCloser fd{::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
    int one = 1;
    if (fd.fd < 0 || ::setsockopt(fd.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        ::bind(fd.fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        throw std::runtime_error("cannot listen on " + name + ": " + std::strerror(errno));
    }
    listenOn(fd.fd, name);
    fd.fd = -1;
}

RequestServer::RequestServer(event_base* base, const std::string& path, mode_t mode, uid_t uid, gid_t gid,
                             Limits limits, Handler handler)
    : RequestServer(base, std::move(limits), std::move(handler)) {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof sun.sun_path) {
        throw std::runtime_error("cannot listen on " + path + ": path too long for a unix socket");
    }
    std::memcpy(sun.sun_path, path.data(), path.size());
    FdCloser fd{::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
    if (fd.fd < 0) {
        throw std::runtime_error("cannot listen on " + path + ": " + std::strerror(errno));
    }
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
        ::unlink(path.c_str());  // stale, from a daemon that did not exit cleanly
    }
    // Created with no access for anybody, then opened up to `mode`: never readable by others
    // in between.
    const mode_t old = ::umask(0777);
    const int rc = ::bind(fd.fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun);
    ::umask(old);
    if (rc != 0) {
        throw std::runtime_error("cannot listen on " + path + ": " + std::strerror(errno));
    }
    if ((uid != static_cast<uid_t>(-1) && ::chown(path.c_str(), uid, gid) != 0) || ::chmod(path.c_str(), mode) != 0) {
        const std::string why = std::strerror(errno);
        ::unlink(path.c_str());
        throw std::runtime_error("cannot set the owner or mode of " + path + ": " + why);
    }
    unixPath_ = path;
    listenOn(fd.fd, path);
    fd.fd = -1;
}

void RequestServer::listenOn(evutil_socket_t fd, const std::string& name) {
    if (::listen(fd, 16) != 0) {
        throw std::runtime_error("cannot listen on " + name + ": " + std::strerror(errno));
    }
    listener_.reset(evconnlistener_new(base_, &RequestServer::acceptCb, this, LEV_OPT_CLOSE_ON_FREE, 0, fd));  // 0: listen() is done
    if (!listener_) {
        throw std::runtime_error("cannot listen on " + name + ": evconnlistener_new failed");
    }
    evconnlistener_set_error_cb(listener_.get(), &RequestServer::errorCb);
    resume_.reset(evtimer_new(base_, &RequestServer::resumeCb, this));
}

RequestServer::~RequestServer() {
    for (auto& [bev, deadline] : conns_) {
        bufferevent_free(bev);
    }
    listener_.reset();
    if (!unixPath_.empty()) {
        ::unlink(unixPath_.c_str());
    }
}

void RequestServer::acceptCb(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* self) {
    static_cast<RequestServer*>(self)->onAccept(fd);
}

void RequestServer::onAccept(evutil_socket_t fd) {
    if (conns_.size() >= static_cast<std::size_t>(limits_.maxConnections)) {
        [[maybe_unused]] ssize_t n = ::send(fd, limits_.busy.data(), limits_.busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        ::close(fd);
        return;
    }
    bufferevent* bev = bufferevent_socket_new(base_, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        ::close(fd);
        return;
    }
    conns_.emplace(bev, std::chrono::steady_clock::now() + std::chrono::seconds(limits_.timeoutSeconds));
    bufferevent_setcb(bev, &RequestServer::readCb, nullptr, &RequestServer::eventCb, this);
    const timeval deadline{limits_.timeoutSeconds, 0};
    bufferevent_set_timeouts(bev, &deadline, &deadline);
    bufferevent_setwatermark(bev, EV_READ, 0, limits_.maxRequest + 1);  // never buffer more
    bufferevent_enable(bev, EV_READ);
}

void RequestServer::onRead(bufferevent* bev) {
    if (std::chrono::steady_clock::now() > conns_[bev]) {
        finish(bev);  // past its deadline, however busy it keeps the connection
        return;
    }
    evbuffer* in = bufferevent_get_input(bev);
    const std::size_t n = evbuffer_get_length(in);
    const auto* data = reinterpret_cast<const char*>(evbuffer_pullup(in, -1));
    std::optional<std::string> answer = handler_(std::string_view(data, n));
    if (!answer && n > limits_.maxRequest) {
        answer = limits_.tooLarge;
    }
    if (!answer) {
        return;
    }
    bufferevent_disable(bev, EV_READ);
    if (answer->empty()) {
        finish(bev);
        return;
    }
    bufferevent_setcb(bev, nullptr, &RequestServer::writeCb, &RequestServer::eventCb, this);
    bufferevent_write(bev, answer->data(), answer->size());
}

void RequestServer::finish(bufferevent* bev) {
    conns_.erase(bev);
    bufferevent_free(bev);
}

void RequestServer::errorCb(evconnlistener* listener, void* self) {
    // Without this libevent logs and retries at once: a loop at full speed while descriptors
    // are short.  Pause instead; the connection waits in the backlog.
    evconnlistener_disable(listener);
    const timeval pause{0, 100 * 1000};
    evtimer_add(static_cast<RequestServer*>(self)->resume_.get(), &pause);
}

void RequestServer::resumeCb(evutil_socket_t, short, void* self) {
    evconnlistener_enable(static_cast<RequestServer*>(self)->listener_.get());
}

void RequestServer::readCb(bufferevent* bev, void* self) { static_cast<RequestServer*>(self)->onRead(bev); }
void RequestServer::writeCb(bufferevent* bev, void* self) { static_cast<RequestServer*>(self)->finish(bev); }
void RequestServer::eventCb(bufferevent* bev, short, void* self) { static_cast<RequestServer*>(self)->finish(bev); }

}  // namespace subproxy
