// DNSBL/DNSWL lookups with libevent's asynchronous resolver (evdns): never a blocking call on
// the loop.  One DnsblResolver per event loop (its own evdns_base, so tests and operators can
// point it at a specific nameserver) sharing one TTL cache for the process (the Hub's; it
// outlives reloads, and a client looked up on one loop is not looked up again on another);
// one DnsblLookup per session, which cancels its queries when the session ends (RAII).
#pragma once
#include <event2/dns.h>
#include <event2/event.h>

#include <functional>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "defence/dnsbl_filter.h"
#include "io/locked.h"
#include "wire/cidr.h"

namespace subproxy {

class DnsblLookup;

class DnsblResolver {
public:
    DnsblResolver(event_base* base, const DnsblConfig& config, Locked<DnsblCache>& cache);
    ~DnsblResolver();
    DnsblResolver(const DnsblResolver&) = delete;
    DnsblResolver& operator=(const DnsblResolver&) = delete;

    // SIGHUP: new nameservers take effect at once; the cache is kept (it holds raw answers,
    // so new filters and weights apply to cached answers too).
    void reconfigure(const DnsblConfig& config);

    // Starts the queries for every zone of `config` (which must outlive the lookup: it is the
    // session's own runtime).  `done` runs once, from the event loop, never from inside this
    // call; not at all if the lookup is destroyed first.
    std::unique_ptr<DnsblLookup> lookup(const DnsblConfig& config, const IpAddress& client,
                                        std::function<void(const DnsblVerdict&, const std::vector<ZoneResult>&)> done);

    std::size_t queriesSent() const { return queriesSent_; }

private:
    friend class DnsblLookup;
    void setNameservers(const std::vector<std::string>& nameservers);
    event_base* base_;
    evdns_base* dns_ = nullptr;
    std::vector<std::string> nameservers_;
    Locked<DnsblCache>& cache_;  // shared by every loop's resolver
    std::size_t queriesSent_ = 0;
};

class DnsblLookup {
public:
    using Done = std::function<void(const DnsblVerdict&, const std::vector<ZoneResult>&)>;
    DnsblLookup(DnsblResolver& resolver, const DnsblConfig& config, const IpAddress& client, Done done);
    ~DnsblLookup();  // cancels the queries still in flight
    DnsblLookup(const DnsblLookup&) = delete;
    DnsblLookup& operator=(const DnsblLookup&) = delete;

private:
    // Heap-allocated per query and freed by its callback, which evdns runs exactly once (with
    // DNS_ERR_CANCEL after evdns_cancel_request): the lookup may be gone by then.
    struct Query {
        DnsblLookup* owner;
        std::size_t zone;
        std::string name;
        evdns_request* request = nullptr;
    };
    static void answerCb(int result, char type, int count, int ttl, void* addresses, void* arg);
    static void timerCb(evutil_socket_t, short, void* self);
    void answered(Query* q, int result, char type, int count, int ttl, const void* addresses);
    void finish();

    DnsblResolver& resolver_;
    const DnsblConfig& config_;
    std::string clientText_;
    Done done_;
    std::vector<ZoneResult> results_;
    std::vector<Query*> inFlight_;
    event* timer_ = nullptr;  // delivers cached verdicts from the loop; the overall deadline
    bool finished_ = false;
    bool constructing_ = true;  // an answer during the constructor waits for the timer
};

}  // namespace subproxy
