// The spambot trap and connection filtering, the process-wide half (issue 3, items 2 and 3):
// the static deny list at accept, the fan-out tracker, the tarpit cap and the DNSBL resolver.
// Owned by the Hub and shared by every event loop (each call takes the mutex briefly); outlives
// reloads (reconfigure() takes the new limits).  Each loop has its own DNSBL resolver (evdns
// lives on one loop): Server::dnsbl().  Per-session decisions are in session_trap.cpp.
#pragma once
#include <memory>
#include <mutex>
#include <string>

#include "ops/config.h"
#include "defence/dnsbl_filter.h"
#include "defence/trap.h"

namespace subproxy {

class Defence;
class SharedState;

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
    explicit Defence(const Config& config);
    void reconfigure(const Config& config);

    // access.deny (unless access.allow): logs the refusal; true = refuse at accept.
    bool denied(const Config& config, const IpAddress& ip, const std::string& who) const;
    // Records an intercepted connection; returns the distinct dialled addresses in the window.
    int recordFanOut(const std::string& client, const std::string& dialled);
    // nullptr when trap.tarpit_max sessions are already tarpitted.
    std::unique_ptr<TarpitSlot> acquireTarpit(int max);
    int tarpitted() const;
    // postscreen's greet cache: a client that waited for the full greeting is not made to
    // wait again for trap.greet_cache_ttl seconds, so customers pay the wait once a day.
    bool greetPassed(const std::string& client);
    void rememberGreetPass(const std::string& client, int ttl);

    // Several gateways (issue 11): the fleet's state, nullptr with state.backend "local"; set
    // once before any worker runs.  Fan-out and greet passes are handed to it after the local
    // decision, and what the other gateways saw comes back below (control loop).
    void setShared(SharedState* shared) { shared_ = shared; }
    // The distinct addresses the fleet saw `client` dial in the window: recordFanOut answers
    // at least that (plus this connection) until the window ends.
    void adoptFanOut(const std::string& client, int dialled, int window);
    void adoptGreetPass(const std::string& client, int ttl);

private:
    friend class TarpitSlot;
    mutable std::mutex mutex_;
    FanOutTracker fanout_;
    DnsblCache greetPass_;  // client address -> expiry (the same bounded TTL map as DNSBL answers)
    DnsblCache fleetFanOut_;  // client address -> {the fleet's count}, expiring with its window
    int fanoutLimit_ = 0;
    int tarpitted_ = 0;
    SharedState* shared_ = nullptr;
};

}  // namespace subproxy
