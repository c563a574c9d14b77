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

// A timer made on first use: a session keeps no event for a phase it never enters (issue 10:
// each costs ~140 bytes of an idle session's RSS).  A failed evtimer_new is fatal below as it
// was before: libevent allocates with malloc, which does not fail on Linux.
inline void startTimer(EventPtr& timer, event_base* base, event_callback_fn callback, void* arg,
                       const timeval& after) {
    if (!timer) {
        timer.reset(evtimer_new(base, callback, arg));
    }
    evtimer_add(timer.get(), &after);
}
inline void stopTimer(const EventPtr& timer) {
    if (timer) {
        evtimer_del(timer.get());
    }
}

}  // namespace subproxy
