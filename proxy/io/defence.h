// The spambot trap and connection filtering, the process-wide half (issue 3, items 2 and 3):
// the static deny list at accept, the fan-out tracker, the tarpit cap and the DNSBL resolver.
// Owned by the Server; outlives reloads (reconfigure() takes the new limits).  Per-session
// decisions are in session_trap.cpp.
#pragma once
#include <event2/event.h>

#include <memory>
#include <string>

#include "ops/config.h"
#include "io/dnsbl.h"
#include "defence/trap.h"

namespace subproxy {

class Defence;

// A place in the tarpit; given back when the session ends (RAII).
class TarpitSlot {
public:
    explicit TarpitSlot(Defence& d) : defence_(d) {}
    ~TarpitSlot();
    TarpitSlot(const TarpitSlot&) = delete;
    TarpitSlot& operator=(const TarpitSlot&) = delete;

private:
    Defence& defence_;
};

class Defence {
public:
    Defence(event_base* base, const Config& config);
    void reconfigure(const Config& config);

    // access.deny (unless access.allow): logs the refusal; true = refuse at accept.
    bool denied(const Config& config, const std::string& address, const std::string& who) const;
    // Records an intercepted connection; returns the distinct dialled addresses in the window.
    int recordFanOut(const std::string& client, const std::string& dialled);
    // nullptr when trap.tarpit_max sessions are already tarpitted.
    std::unique_ptr<TarpitSlot> acquireTarpit(int max);
    int tarpitted() const { return tarpitted_; }
    // postscreen's greet cache: a client that waited for the full greeting is not made to
    // wait again for trap.greet_cache_ttl seconds, so customers pay the wait once a day.
    bool greetPassed(const std::string& client);
    void rememberGreetPass(const std::string& client, int ttl);
    DnsblResolver& dnsbl() { return *dnsbl_; }

private:
    friend class TarpitSlot;
    FanOutTracker fanout_;
    DnsblCache greetPass_;  // client address -> expiry (the same bounded TTL map as DNSBL answers)
    int tarpitted_ = 0;
    std::unique_ptr<DnsblResolver> dnsbl_;
};

}  // namespace subproxy
