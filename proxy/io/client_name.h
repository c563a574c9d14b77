// The customer's host name by forward-confirmed reverse DNS (issue 11 item 5), as Postfix's
// smtpd_peer and nginx's mail resolver find it: PTR of the address, then A (or AAAA) of that
// name, which must contain the address.  Asynchronous on the loop (evdns), bounded by
// client_name.timeout_ms; the result goes to the log and to XCLIENT NAME=.
#pragma once
#include <event2/dns.h>
#include <event2/event.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "io/event_handles.h"
#include "ops/config.h"
#include "wire/cidr.h"

namespace subproxy {

struct ClientName {
    enum class Status { Confirmed, Unavailable, TempUnavailable };
    Status status = Status::Unavailable;
    std::string name;    // Confirmed: the name; otherwise the PTR answer, if any (for the log)
    std::string detail;  // why it is not confirmed
    // XCLIENT NAME=: the name, "[UNAVAILABLE]" (no PTR, or it does not confirm) or
    // "[TEMPUNAVAIL]" (a timeout or a server failure), as Postfix's XCLIENT_README has them.
    std::string xclientValue() const;
};

class ClientNameLookup;

// One per process (per loop): its own evdns_base, so client_name.nameserver can differ from
// the DNSBL nameservers and from the MSA's resolver.
class ClientNameResolver {
public:
    ClientNameResolver(event_base* base, const ClientNameConfig& config);
    ~ClientNameResolver();  // pending lookups must be gone (sessions go first)
    ClientNameResolver(const ClientNameResolver&) = delete;
    ClientNameResolver& operator=(const ClientNameResolver&) = delete;

    void reconfigure(const ClientNameConfig& config);  // SIGHUP: new nameservers at once

    // `done` runs once, from the loop, never inside this call; not at all if the lookup is
    // destroyed first (its queries are cancelled).
    std::unique_ptr<ClientNameLookup> lookup(const IpAddress& client, int timeoutMs,
                                             std::function<void(const ClientName&)> done);

private:
    friend class ClientNameLookup;
    event_base* base_;
    evdns_base* dns_ = nullptr;
    std::vector<std::string> nameservers_;
};

class ClientNameLookup {
public:
    using Done = std::function<void(const ClientName&)>;
    ClientNameLookup(ClientNameResolver& resolver, const IpAddress& client, int timeoutMs, Done done);
    ~ClientNameLookup();
    ClientNameLookup(const ClientNameLookup&) = delete;
    ClientNameLookup& operator=(const ClientNameLookup&) = delete;

private:
    // Heap-allocated per query and freed by its callback, which evdns runs exactly once (with
    // DNS_ERR_CANCEL after evdns_cancel_request): the lookup may be gone by then.
    struct Query {
        ClientNameLookup* owner;
        bool reverse;
        evdns_request* request = nullptr;
    };
    static void answerCb(int result, char type, int count, int ttl, void* addresses, void* arg);
    static void timerCb(evutil_socket_t, short, void* self);
    void ptrAnswer(int result, char type, int count, const void* addresses);
    void forwardAnswer(int result, char type, int count, const void* addresses);
    bool start(bool reverse);  // false: the query could not even be started
    void finish(ClientName result);  // from the loop only: a timer callback or an answer

    ClientNameResolver& resolver_;
    IpAddress client_;
    Done done_;
    Query* inFlight_ = nullptr;
    std::string ptrName_;
    EventPtr timer_;  // the deadline; also delivers a failure to start from the loop
    ClientName early_;  // set when a query could not start: delivered by the timer
    bool finished_ = false;
};

}  // namespace subproxy
