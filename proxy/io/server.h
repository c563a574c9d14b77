// One event loop (a worker) and the customer sessions on it: its own listening sockets
// (SO_REUSEPORT: the kernel spreads connections over the workers), its own resolver and DNSBL
// resolver, its own counters.  What the loops share (the guard, the trap's caches, the MSA's
// capabilities, the migration report, the password-check threads, the configuration as
// reloaded) belongs to the Hub (hub.h); a worker reaches it through the accessors below, and
// the Hub reaches a worker only through post().  Sessions talk to their Server.
#pragma once
#include <event2/dns.h>
#include <event2/event.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/account_store.h"
#include "io/auth_workers.h"
#include "io/client_name.h"
#include "io/credential_store.h"
#include "io/defence.h"
#include "io/dnsbl.h"
#include "io/guard.h"
#include "io/event_handles.h"
#include "io/listener.h"
#include "io/locked.h"
#include "io/mailbox.h"
#include "io/msa_caps.h"
#include "io/original_dst.h"
#include "io/proxy_intake.h"
#include "io/shared_state.h"
#include "io/tls.h"
#include "ops/config.h"
#include "ops/metrics.h"
#include "ops/migration_report.h"

namespace subproxy {

class Hub;
class Session;

// Everything a reload replaces as one unit; sessions keep the one they started with.
struct Runtime {
    Config config;
    SslCtxPtr serverTls;
    SslCtxPtr clientTls;
};

// Loads the config and builds the TLS contexts; throws ConfigError / std::runtime_error.
std::shared_ptr<const Runtime> loadRuntime(const std::string& configFile);
// The same for the command line: the problem printed to standard error, nullptr.
std::shared_ptr<const Runtime> loadRuntimeOrSay(const std::string& configFile);

// `subproxy -t`: config, certificates, keys, SASL.  Prints problems, returns the exit code.
int checkConfiguration(const std::string& configFile);
// What Cyrus SASL cannot do with this configuration (empty: all good): -t and SIGHUP.
std::vector<std::string> saslProblems(const Config& config);

// The migration report as a session sees it: it only records (under the report's lock), and
// hands the submission to the fleet's report when there is one (issue 11).
class MigrationRecorder {
public:
    MigrationRecorder(Locked<MigrationReport>& report, SharedState* shared) : report_(report), shared_(shared) {}
    void record(const MigrationSubmission& submission, std::int64_t now) {
        report_.with([&](MigrationReport& r) { r.record(submission, now); });
        if (shared_) {
            shared_->migration(submission, now);
        }
    }

private:
    Locked<MigrationReport>& report_;
    SharedState* shared_;
};

class Server {
public:
    // Binds this worker's listeners (with SO_REUSEPORT when `sharePorts`); throws
    // std::runtime_error naming the address.  Runs nothing until run().
    Server(Hub& hub, int index, std::shared_ptr<const Runtime> runtime, bool sharePorts);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    void run();  // the loop, on the worker's thread, until the drain has finished
    int index() const { return index_; }

    // From any thread: a job for this loop (the Hub's reload, drain, scrape and shed requests).
    void post(Mailbox::Job job) const { mailbox_->post(std::move(job)); }
    // On this loop (posted by the Hub):
    void setRuntime(std::shared_ptr<const Runtime> runtime);
    void beginShutdown();
    // At max_sessions on another worker: close our oldest unauthenticated session, if any.
    bool shedOne();
    // Unauthenticated sessions now (any thread; for the Hub's choice of whom to ask to shed).
    std::size_t unauthenticated() const { return unauthenticatedCount_.load(std::memory_order_relaxed); }

    // For the sessions of this loop:
    event_base* base() const { return base_.get(); }
    evdns_base* dns() const { return dns_.get(); }
    AuthWorkers& authWorkers() { return authWorkers_; }
    void sessionClosed(std::uint64_t id);
    void sessionAuthenticated(std::uint64_t id);
    Metrics& metrics() { return metrics_; }  // this loop's own; the Hub adds them up
    MigrationRecorder migration();
    const Runtime& runtime() const { return *runtime_; }
    Session* findSession(std::uint64_t id);
    Guard& guard();
    Defence& defence();
    MsaCaps& msaCaps();
    AccountStore& accounts();  // compromised accounts (issue 12): per-user counters and flags
    CredentialStore& credentials();  // auth.cache_ttl
    DnsblResolver& dnsbl() { return *dnsbl_; }
    // The customer's host name (forward-confirmed reverse DNS; client_name group).
    ClientNameResolver& clientNames() { return *clientNames_; }

private:
    void accept(const Listener& listener, evutil_socket_t fd, const sockaddr* peer);
    // Shutting down, or full (limits.max_sessions, after shedding): refused and closed.
    bool refusedAtCapacity(evutil_socket_t fd, const std::string& who);
    // The checks on the customer's address (mail loop, access list, bans and per-address
    // limits), then the session.  At accept, or on a proxy_protocol listener once the header
    // has named the customer (`proxied`; `via` says by whom, for the log).
    void admit(const ListenerConfig& listener, const std::string& listenerName, evutil_socket_t fd,
               const Endpoint& client, const Destination& dest, bool proxied, const std::string& via = {});
    // True when refused (and closed).
    bool refusedForAddress(const ListenerConfig& listener, evutil_socket_t fd, const Endpoint& client,
                           const Destination& dest, bool proxied, const std::string& who);
    // A proxy_protocol listener's header is in (or the intake gave up): admit the customer.
    void proxyHeaderRead(const ListenerConfig& listener, const std::string& listenerName, evutil_socket_t fd,
                         const Endpoint& balancer, const std::optional<ProxyHeader>& header);
    void finishShutdown();
    static void graceCb(evutil_socket_t, short, void* self);

    Hub& hub_;
    const int index_;
    std::shared_ptr<const Runtime> runtime_;
    EventBasePtr base_;  // first: everything below lives on the loop and goes before it
    EvdnsBasePtr dns_;
    std::unique_ptr<Mailbox> mailbox_;  // before authWorkers_, which posts to it
    AuthWorkers authWorkers_;
    std::unique_ptr<DnsblResolver> dnsbl_;
    std::unique_ptr<ClientNameResolver> clientNames_;  // its queries live on this loop
    std::unique_ptr<ProxyIntake> intake_;              // proxy_protocol listeners: headers being read
    std::vector<std::unique_ptr<Listener>> listeners_;
    std::unordered_map<std::uint64_t, std::unique_ptr<Session>> sessions_;
    // Sessions that have not authenticated, oldest first (ids only grow): whom to shed first.
    std::map<std::uint64_t, Session*> unauthenticated_;
    std::atomic<std::size_t> unauthenticatedCount_{0};
    EventPtr grace_;
    bool stopping_ = false;
    Metrics metrics_;
};

}  // namespace subproxy
