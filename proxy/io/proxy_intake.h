// Reading the PROXY protocol header on a proxy_protocol listener (issue 11 item 4): before a
// session exists, with a deadline (limits.proxy_header_timeout) and the parser's size bound.
// The header is taken off the socket exactly (peek, parse, then read only its bytes, as
// Postfix's haproxy_srvr_receive does), so what the customer sent behind it (an EHLO, a TLS
// ClientHello) stays in the socket for the session.  Nothing is ever written to the peer: it
// is a load balancer, not an SMTP client, and a refusal is a log line and a closed connection.
#pragma once
#include <event2/event.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "io/event_handles.h"
#include "wire/proxy_header.h"

namespace subproxy {

class ProxyIntake {
public:
    // With the header: the socket is the caller's again.  Without (malformed, missing, too
    // slow, closed): the intake logged why and closed the socket; fd is -1.
    using Done = std::function<void(evutil_socket_t fd, const std::optional<ProxyHeader>& header)>;

    explicit ProxyIntake(event_base* base) : base_(base) {}
    ~ProxyIntake();  // closes the sockets still waiting for their header
    ProxyIntake(const ProxyIntake&) = delete;
    ProxyIntake& operator=(const ProxyIntake&) = delete;

    // `fd` must be non-blocking; `who` ("[10.0.0.5]:4711") starts the log lines.  `done` runs
    // from the loop, never inside this call.
    void start(evutil_socket_t fd, std::string who, int timeoutSeconds, Done done);
    std::size_t pending() const { return pending_.size(); }
    void clear();  // shutdown: every waiting socket is closed

private:
    struct Pending {
        ProxyIntake* owner;
        evutil_socket_t fd;
        std::string who;
        Done done;
        std::string got;  // header bytes already taken off the socket (a header split in segments)
        EventPtr event;   // readable, or the deadline
        std::chrono::steady_clock::time_point deadline;  // one bound on the whole header
    };
    static void readCb(evutil_socket_t fd, short what, void* arg);
    void onReadable(Pending& p, short what);
    void finish(Pending& p, const std::optional<ProxyHeader>& header, const std::string& failure);

    event_base* base_;
    std::unordered_map<evutil_socket_t, std::unique_ptr<Pending>> pending_;
};

}  // namespace subproxy
