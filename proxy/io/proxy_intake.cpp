// Reading the PROXY protocol header.  See proxy_intake.h.
#include <sys/socket.h>
#include <unistd.h>

#include "io/proxy_intake.h"

#include <cerrno>
#include <cstring>

#include "io/event_handles.h"
#include "os/log.h"
#include "wire/text_util.h"

namespace subproxy {


namespace {

timeval until(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - std::chrono::steady_clock::now());
    const long long us = left.count() > 0 ? left.count() : 0;
    return timeval{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
}

}  // namespace

ProxyIntake::~ProxyIntake() { clear(); }

void ProxyIntake::clear() {
    for (auto& [fd, p] : pending_) {
        ::close(fd);
    }
    pending_.clear();
}

void ProxyIntake::start(evutil_socket_t fd, std::string who, int timeoutSeconds, Done done) {
    auto p = std::make_unique<Pending>();
    p->owner = this;
    p->fd = fd;
    p->who = std::move(who);
    p->done = std::move(done);
    // One event for both: EV_READ when bytes arrive, EV_TIMEOUT at the deadline, which each
    // re-arm only shortens (a balancer that trickles the header does not get more time).
    p->deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeoutSeconds);
    p->event.reset(event_new(base_, fd, EV_READ, &ProxyIntake::readCb, p.get()));
    const timeval wait = until(p->deadline);
    event_add(p->event.get(), &wait);
    pending_[fd] = std::move(p);
}

void ProxyIntake::readCb(evutil_socket_t, short what, void* arg) {
    auto* p = static_cast<Pending*>(arg);
    p->owner->onReadable(*p, what);
}

void ProxyIntake::onReadable(Pending& p, short what) {
    if (what & EV_TIMEOUT) {
        finish(p, std::nullopt, p.got.empty() ? "no PROXY header" : "incomplete PROXY header");
        return;
    }
    char buf[kProxyHeaderMax];
    const ssize_t n = ::recv(p.fd, buf, kProxyHeaderMax - p.got.size(), MSG_PEEK);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        finish(p, std::nullopt, n == 0 ? "connection closed before the PROXY header ended"
                                       : std::string("reading the PROXY header: ") + std::strerror(errno));
        return;
    }
    if (n > 0) {
        const std::string seen = p.got + std::string(buf, static_cast<std::size_t>(n));
        const ProxyParse parse = parseProxyHeader(seen);
        if (parse.status == ProxyParse::Status::Invalid) {
            finish(p, std::nullopt, "malformed PROXY header: " + parse.error + " (\"" + printable(seen, 60) + "\")");
            return;
        }
        // NeedMore: every byte seen belongs to the header, so take them all off the socket
        // (left there, they would make the socket readable again at once).  Done: take exactly
        // the header; the customer's own bytes behind it stay for the session.
        const std::size_t take =
            parse.status == ProxyParse::Status::Done ? parse.length - p.got.size() : static_cast<std::size_t>(n);
        if (::recv(p.fd, buf, take, 0) != static_cast<ssize_t>(take)) {
            finish(p, std::nullopt, std::string("reading the PROXY header: ") + std::strerror(errno));
            return;
        }
        if (parse.status == ProxyParse::Status::Done) {
            finish(p, parse.header, {});
            return;
        }
        p.got.append(buf, take);
    }
    const timeval wait = until(p.deadline);
    event_add(p.event.get(), &wait);
}

void ProxyIntake::finish(Pending& p, const std::optional<ProxyHeader>& header, const std::string& failure) {
    const evutil_socket_t fd = p.fd;
    Done done = std::move(p.done);
    if (!header) {
        logWarning(p.who + ": " + failure + "; connection closed");
        ::close(fd);
    }
    pending_.erase(fd);  // frees p
    done(header ? fd : -1, header);
}

}  // namespace subproxy
