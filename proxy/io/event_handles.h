// Ownership of libevent's loop-level handles, so that a constructor that throws half-way (a
// listener that cannot bind) still frees what it made.
#pragma once
#include <event2/dns.h>
#include <event2/event.h>

#include <memory>

namespace subproxy {

struct EventBaseFree {
    void operator()(event_base* base) const { event_base_free(base); }
};
struct EvdnsBaseFree {
    void operator()(evdns_base* dns) const { evdns_base_free(dns, 0); }
};
struct EventFree {
    void operator()(event* ev) const { event_free(ev); }
};

using EventBasePtr = std::unique_ptr<event_base, EventBaseFree>;
using EvdnsBasePtr = std::unique_ptr<evdns_base, EvdnsBaseFree>;
using EventPtr = std::unique_ptr<event, EventFree>;

}  // namespace subproxy
