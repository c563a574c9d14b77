// The process: the control loop (signals, the guard's state file and control socket, the MSA
// capability probe, the status endpoint) and what every worker loop shares: the configuration
// as last (re)loaded, the guard, the trap's caches, the migration report, the password-check
// threads.  It starts `workers` Server loops, one thread each, and tells them, through their
// mailboxes, to reload, to drain, or to hand over their counters for a scrape.
#pragma once
#include <event2/dns.h>
#include <event2/event.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "io/auth_workers.h"
#include "io/credential_store.h"
#include "io/defence.h"
#include "io/event_handles.h"
#include "io/guard.h"
#include "io/locked.h"
#include "io/mailbox.h"
#include "io/msa_caps.h"
#include "io/server.h"
#include "io/shared_state.h"
#include "ops/metrics.h"
#include "ops/migration_report.h"

namespace subproxy {

// `workers` as configured, 0 (the default) being one per CPU online.
int workerCount(const Config& config);

class Hub {
public:
    // Loads the guard's state, then binds every worker's listeners (before privileges are
    // dropped); throws std::runtime_error.  No thread runs yet but the password checks'.
    Hub(std::string configFile, std::shared_ptr<const Runtime> runtime);
    ~Hub();
    Hub(const Hub&) = delete;
    Hub& operator=(const Hub&) = delete;

    int run();  // starts the workers; returns after SIGTERM/SIGINT and the drain

    event_base* base() const { return base_.get(); }  // the control loop
    const Runtime& runtime() const { return *runtime_; }  // control loop only
    Guard& guard() { return *guard_; }
    Defence& defence() { return *defence_; }
    MsaCaps& msaCaps() { return *msaCaps_; }
    AccountStore& accounts() { return *accounts_; }
    CredentialStore& credentials() { return *credentials_; }
    AuthPool& authPool() { return *authPool_; }
    Locked<MigrationReport>& migration() { return migration_; }
    Locked<DnsblCache>& dnsblCache() { return dnsblCache_; }
    // The state several gateways share (state.backend "redis"); nullptr when local.
    SharedState* shared() { return shared_.get(); }

    // Counters of every worker added up, with the guard's (control loop; waits for each worker
    // to copy its own, at most a second).  `perWorker` gets each worker's sessions accepted.
    Metrics metrics(std::vector<std::uint64_t>* perWorker = nullptr) const;

    // For the workers (any thread):
    std::uint64_t nextSessionId() { return nextSessionId_.fetch_add(1, std::memory_order_relaxed); }
    std::size_t openSessions() const { return openSessions_.load(std::memory_order_relaxed); }
    void sessionOpened() { openSessions_.fetch_add(1, std::memory_order_relaxed); }
    void sessionGone() { openSessions_.fetch_sub(1, std::memory_order_relaxed); }
    // At max_sessions with nothing of its own to shed: asks another worker to shed one.  False
    // when no other worker has an unauthenticated session.
    bool shedElsewhere(int askingWorker);
    void workerStopped();  // a worker's loop has ended (its thread, just before it returns)

private:
    void reload();
    void beginShutdown();
    static void signalCb(evutil_socket_t sig, short, void* self);

    std::string configFile_;
    std::shared_ptr<const Runtime> runtime_;
    // As started: what SIGHUP cannot change stays in effect, however many reloads came since.
    const Config started_;
    EventBasePtr base_;  // first: everything below lives on the control loop and goes before it
    EvdnsBasePtr dns_;
    std::unique_ptr<Mailbox> mailbox_;
    std::vector<EventPtr> signals_;
    std::unique_ptr<Guard> guard_;      // outlives reloads: bans and counters are not configuration
    std::unique_ptr<Defence> defence_;  // outlives reloads: fan-out history, tarpit count, greet cache
    std::unique_ptr<MsaCaps> msaCaps_;  // outlives reloads; its probe lives on the control loop
    std::unique_ptr<AuthPool> authPool_;
    std::unique_ptr<CredentialStore> credentials_;  // auth.cache_ttl: recent password verdicts
    std::unique_ptr<AccountStore> accounts_;  // outlives reloads: counters and flags are not configuration
    Locked<MigrationReport> migration_;
    Locked<DnsblCache> dnsblCache_{std::size_t{0}};  // DNSBL answers, for every loop's resolver
    std::unique_ptr<SharedState> shared_;  // after guard_ and defence_, which it feeds
    Metrics metrics_;  // the control loop's own: reloads, start time
    std::atomic<std::uint64_t> nextSessionId_{1};
    std::atomic<std::size_t> openSessions_{0};
    std::vector<std::unique_ptr<Server>> workers_;
    std::vector<std::thread> threads_;
    int stoppedWorkers_ = 0;  // control loop only
    bool stopping_ = false;
};

}  // namespace subproxy
