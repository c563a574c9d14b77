// The daemon: one event loop, the listeners, the sessions, the SASL worker pool, the resolver
// and the signals (SIGHUP reload, SIGTERM/SIGINT drain and exit).
#pragma once
#include <event2/dns.h>
#include <event2/event.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/auth_workers.h"
#include "io/client_name.h"
#include "ops/config.h"
#include "io/event_handles.h"
#include "io/defence.h"
#include "io/guard.h"
#include "io/listener.h"
#include "ops/metrics.h"
#include "ops/migration_report.h"
#include "io/msa_caps.h"
#include "io/original_dst.h"
#include "io/proxy_intake.h"
#include "io/tls.h"

namespace subproxy {

class Session;

// Everything a reload replaces as one unit; sessions keep the one they started with.
struct Runtime {
    Config config;
    SslCtxPtr serverTls;
    SslCtxPtr clientTls;
};

// Loads the config and builds the TLS contexts; throws ConfigError / std::runtime_error.
std::shared_ptr<const Runtime> loadRuntime(const std::string& configFile);

// `subproxy -t`: config, certificates, keys, SASL.  Prints problems, returns the exit code.
int checkConfiguration(const std::string& configFile);

class Server {
public:
    Server(std::string configFile, std::shared_ptr<const Runtime> runtime);
    ~Server();

    int run();  // until SIGTERM/SIGINT and the drain; returns the exit code

    event_base* base() const { return base_.get(); }
    evdns_base* dns() const { return dns_.get(); }
    AuthWorkers& authWorkers() { return *workers_; }
    void sessionClosed(std::uint64_t id);
    void sessionAuthenticated(std::uint64_t id) { unauthenticated_.erase(id); }
    // Status endpoint counters and the migration report (issue 4), owned here so that they
    // outlive reloads; the HTTP endpoint and the state file read them from main.cpp.
    Metrics& metrics() { return metrics_; }
    MigrationReport& migration() { return migration_; }
    const Runtime& runtime() const { return *runtime_; }
    Session* findSession(std::uint64_t id);
    // Password guessers, bans and per-address limits (issue 3 items 1 and 4).
    Guard& guard() { return *guard_; }
    // Spambot trap and connection filtering (issue 3 items 2 and 3).
    Defence& defence() { return *defence_; }
    // The MSA's capabilities as last learned, for the EHLO before AUTH.
    MsaCaps& msaCaps() { return *msaCaps_; }
    // The customer's host name (forward-confirmed reverse DNS; client_name group).
    ClientNameResolver& clientNames() { return *clientNames_; }

private:
    void accept(const Listener& listener, evutil_socket_t fd, const sockaddr* peer);
    // The checks on the customer's address (mail loop, access list, bans and per-address
    // limits), then the session.  At accept, or on a proxy_protocol listener once the header
    // has named the customer (`proxied`; `via` says by whom, for the log).
    void admit(const ListenerConfig& listener, const std::string& listenerName, evutil_socket_t fd,
               const Endpoint& client, const Destination& dest, bool proxied, const std::string& via = {});
    // A proxy_protocol listener's header is in (or the intake gave up): admit the customer.
    void proxyHeaderRead(const ListenerConfig& listener, const std::string& listenerName, evutil_socket_t fd,
                         const Endpoint& balancer, const std::optional<ProxyHeader>& header);
    // At max_sessions: closes the oldest unauthenticated session that is not waiting for the
    // password backend.  False when every session has authenticated (or is authenticating).
    bool shedOne();
    void reload();
    void beginShutdown();
    void finishShutdown();
    static void signalCb(evutil_socket_t sig, short, void* self);
    static void graceCb(evutil_socket_t, short, void* self);

    std::string configFile_;
    std::shared_ptr<const Runtime> runtime_;
    // As started: what SIGHUP cannot change stays in effect, however many reloads came since.
    const Config started_;
    EventBasePtr base_;  // first: everything below lives on the loop and goes before it
    EvdnsBasePtr dns_;
    std::unique_ptr<AuthWorkers> workers_;
    std::vector<std::unique_ptr<Listener>> listeners_;
    std::unordered_map<std::uint64_t, std::unique_ptr<Session>> sessions_;
    // Sessions that have not authenticated, oldest first (ids only grow): whom to shed first.
    std::map<std::uint64_t, Session*> unauthenticated_;
    std::uint64_t nextId_ = 1;
    std::vector<EventPtr> signals_;
    EventPtr grace_;
    bool stopping_ = false;
    std::unique_ptr<Guard> guard_;  // outlives reloads: bans and counters are not configuration
    std::unique_ptr<Defence> defence_;  // outlives reloads: fan-out history, tarpit count, DNSBL cache
    Metrics metrics_;
    MigrationReport migration_;
    std::unique_ptr<MsaCaps> msaCaps_;  // outlives reloads; its probe lives on the loop
    std::unique_ptr<ProxyIntake> intake_;  // proxy_protocol listeners: headers being read
    std::unique_ptr<ClientNameResolver> clientNames_;  // outlives reloads; its queries live on the loop
};

}  // namespace subproxy
