#include <sys/socket.h>
#include <unistd.h>

#include "io/server.h"

#include <event2/dns.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <ctime>
#include <iostream>

#include "os/log.h"
#include "io/original_dst.h"
#include "sasl_server.h"
#include "io/session.h"
#include "wire/cidr.h"
#include "wire/text_util.h"

namespace subproxy {

std::shared_ptr<const Runtime> loadRuntime(const std::string& configFile) {
    auto runtime = std::make_shared<Runtime>();
    runtime->config = loadConfig(configFile);
    try {
        runtime->serverTls = makeServerContext(runtime->config.tls);
        runtime->clientTls = makeClientContext(runtime->config.upstream);
    } catch (const TlsSettingError& e) {
        throw settingError(configFile, e.key, e.what());  // FILE:LINE of the setting
    }
    return runtime;
}

namespace {

// What Cyrus SASL cannot do with this configuration (empty: all good).  Used by -t and by
// SIGHUP, so that a reload never promises customers a mechanism the backend cannot serve.
std::vector<std::string> saslProblems(const Config& config) {
    std::vector<std::string> problems;
    if (config.auth.backend != AuthBackend::Sasl) {
        return problems;
    }
    const std::string cyrusFile = config.auth.saslConfigDir + "/" + config.auth.saslService + ".conf";
    if (::access(cyrusFile.c_str(), R_OK) != 0) {
        problems.push_back("auth.sasl_config_dir: cannot read " + cyrusFile + ": " + std::strerror(errno));
        return problems;
    }
    const auto available = sasl::availableMechanisms(config.hostname, config.auth.saslRealm);
    for (const auto& mech : config.auth.mechanisms) {
        if (std::find(available.begin(), available.end(), mech) == available.end()) {
            problems.push_back("auth.mechanisms: Cyrus SASL cannot serve " + mech + " with " + cyrusFile +
                               " (check mech_list, pwcheck_method and the plugins installed; CRAM-MD5 needs "
                               "auxprop secrets)");
        }
    }
    return problems;
}

bool sameBlocks(const CidrList& a, const CidrList& b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a.blocks()[i].str() != b.blocks()[i].str()) {
            return false;
        }
    }
    return true;
}

// The configured DNSBL zones' series exist from the start (Metrics::dnsblZones).
std::vector<std::string> dnsblZoneNames(const Config& config) {
    std::vector<std::string> names;
    for (const DnsblZone& zone : config.dnsbl.zones) {
        names.push_back(zone.name);
    }
    return names;
}

}  // namespace

int checkConfiguration(const std::string& configFile) {
    std::shared_ptr<const Runtime> runtime;
    try {
        runtime = loadRuntime(configFile);
        if (runtime->config.auth.backend == AuthBackend::Sasl) {
            sasl::initialize(runtime->config.auth.saslService, runtime->config.auth.saslConfigDir);
        }
    } catch (const ConfigError& e) {
        std::cerr << e.what() << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << configFile << ": " << e.what() << "\n";
        return 1;
    }
    const auto problems = saslProblems(runtime->config);
    for (const auto& problem : problems) {
        std::cerr << configFile << ": " << problem << "\n";
    }
    return problems.empty() ? 0 : 1;
}

Server::Server(std::string configFile, std::shared_ptr<const Runtime> runtime)
    : configFile_(std::move(configFile)), runtime_(std::move(runtime)), started_(runtime_->config) {
    base_.reset(event_base_new());
    if (!base_) {
        throw std::runtime_error("cannot create the event loop");
    }
    dns_.reset(evdns_base_new(base(), EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE));
    if (!dns_) {
        // No usable resolv.conf: numeric MSA addresses still work; names will fail clearly.
        dns_.reset(evdns_base_new(base(), EVDNS_BASE_DISABLE_WHEN_INACTIVE));
    }
    const Config& config = runtime_->config;
    // The guard's state first, before any listener and before the signal events: a customer
    // must not connect to a bound socket that nobody serves while a big state file loads, and
    // a SIGTERM or SIGINT meanwhile keeps its default action (the process ends at once;
    // nothing is served yet, nothing is lost) instead of waiting in libevent's queue.
    guard_ = std::make_unique<Guard>(base(), config.guard);
    guard_->setMetrics(&metrics_);
    intake_ = std::make_unique<ProxyIntake>(base());
    workers_ = std::make_unique<AuthWorkers>(base(), config.auth.backend == AuthBackend::Sasl ? config.auth.workers : 0,
                                             config.auth.maxWorkers);
    for (const auto& lc : config.listeners) {
        auto listener = std::make_unique<Listener>(
            base(), lc, "421 4.3.2 " + config.hostname + " Error: too many connections, try again later\r\n",
            [this, index = listeners_.size()](evutil_socket_t fd, const sockaddr* peer, int) {
                accept(*listeners_[index], fd, peer);
            });
        listeners_.push_back(std::move(listener));
    }
    for (int sig : {SIGHUP, SIGTERM, SIGINT, SIGUSR1}) {
        signals_.emplace_back(evsignal_new(base(), sig, &Server::signalCb, this));
        event_add(signals_.back().get(), nullptr);
    }
    std::signal(SIGPIPE, SIG_IGN);
    grace_.reset(evtimer_new(base(), &Server::graceCb, this));
    defence_ = std::make_unique<Defence>(base(), config);
    msaCaps_ = std::make_unique<MsaCaps>(base(), dns());
    clientNames_ = std::make_unique<ClientNameResolver>(base(), config.clientName);
    metrics_.startedAt = static_cast<std::int64_t>(std::time(nullptr));
    metrics_.dnsblZones(dnsblZoneNames(config));
    migration_.setLimits(migrationLimits(config.migration));
}

Server::~Server() {
    sessions_.clear();
    intake_.reset();  // its events need the loop
    clientNames_.reset();  // after the sessions, whose lookups it serves
    msaCaps_.reset();  // its probe connection and timer need the loop and the resolver
    defence_.reset();  // its resolver needs the loop
    guard_.reset();  // writes the state file; before the loop it lives on goes
    listeners_.clear();
    workers_.reset();
    // The timers, the resolver and then the loop go with the members, in that order.
}

int Server::run() {
    std::string names;
    for (const auto& l : listeners_) {
        names += " " + l->name();
    }
    logInfo("subproxy " SUBPROXY_VERSION " started; listening on" + names);
    msaCaps_->configure(runtime_);  // the first probe of the MSA's capabilities
    event_base_dispatch(base());
    logInfo("subproxy stopped");
    return 0;
}

Session* Server::findSession(std::uint64_t id) {
    auto it = sessions_.find(id);
    return it == sessions_.end() ? nullptr : it->second.get();
}

void Server::sessionClosed(std::uint64_t id) {
    guard_->sessionClosed(id);
    unauthenticated_.erase(id);
    if (sessions_.erase(id) != 0 && metrics_.sessionsOpen > 0) {
        --metrics_.sessionsOpen;
    }
    if (stopping_ && sessions_.empty()) {
        finishShutdown();
    }
}

namespace {

// Refusals at accept time are written straight to the fresh socket: no session is made.
void refuse(evutil_socket_t fd, const std::string& reply) {
    [[maybe_unused]] ssize_t n = ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::close(fd);
}

}  // namespace

void Server::accept(const Listener& listener, evutil_socket_t fd, const sockaddr* peer) {
    const Config& config = runtime_->config;
    const Endpoint client = endpointOf(peer);
    const std::string who = "[" + client.address + "]:" + std::to_string(client.port);
    if (stopping_) {
        ++metrics_.connectionsRefused;
        refuse(fd, "421 4.3.2 " + config.hostname + " Service shutting down, try again later\r\n");
        return;
    }
    // Connections still sending their PROXY header hold a descriptor too.
    if (sessions_.size() + intake_->pending() >= static_cast<std::size_t>(config.limits.maxSessions) && !shedOne()) {
        logWarning(who + ": too many sessions (limits.max_sessions=" + std::to_string(config.limits.maxSessions) +
                   ", all authenticated or authenticating), connection refused");
        ++metrics_.connectionsRefused;
        refuse(fd, "421 4.3.2 " + config.hostname + " Error: too many connections, try again later\r\n");
        return;
    }
    if (!listener.config().proxyProtocol) {
        admit(listener.config(), listener.name(), fd, client, originalDestination(fd), false);
        return;
    }
    // Behind a load balancer: the peer is the balancer; the customer is named by its PROXY
    // header.  Only a trusted peer may name one: anyone else could claim any address.  No
    // reply to the rest: whatever connects here is not an SMTP client of ours.
    if (!listener.config().trustedProxies.contains(client.address)) {
        logWarning(who + ": not in trusted_proxies of listener " + listener.name() + "; connection closed");
        ++metrics_.connectionsRefused;
        ::close(fd);
        return;
    }
    evutil_make_socket_nonblocking(fd);
    intake_->start(fd, who, config.limits.proxyHeaderTimeout,
                   [this, lc = listener.config(), name = listener.name(), client](
                       evutil_socket_t sock, const std::optional<ProxyHeader>& header) {
                       proxyHeaderRead(lc, name, sock, client, header);
                   });
}

void Server::proxyHeaderRead(const ListenerConfig& listener, const std::string& listenerName, evutil_socket_t fd,
                             const Endpoint& balancer, const std::optional<ProxyHeader>& header) {
    if (!header) {
        ++metrics_.connectionsRefused;  // logged and closed by the intake
        return;
    }
    if (stopping_) {
        ++metrics_.connectionsRefused;
        refuse(fd, "421 4.3.2 " + runtime_->config.hostname + " Service shutting down, try again later\r\n");
        return;
    }
    const std::string who = "[" + balancer.address + "]:" + std::to_string(balancer.port);
    if (header->local) {
        // The balancer's own health check: served as a connection from it.
        logInfo(who + ": PROXY v2 LOCAL (the balancer's health check)");
        admit(listener, listenerName, fd, balancer, originalDestination(fd), false);
        return;
    }
    Destination dest;
    dest.dialled = {formatIpAddress(header->destination), header->destinationPort};
    dest.local = dest.dialled;
    const Endpoint customer{formatIpAddress(header->source), header->sourcePort};
    admit(listener, listenerName, fd, customer, dest, true, "PROXY v" + std::to_string(header->version) + " from " + who);
}

void Server::admit(const ListenerConfig& listener, const std::string& listenerName, evutil_socket_t fd,
                   const Endpoint& client, const Destination& dest, bool proxied, const std::string& via) {
    const Config& config = runtime_->config;
    const std::string who = "[" + client.address + "]:" + std::to_string(client.port);
    bool dialsOriginal = false;
    for (const auto& h : config.upstream.hosts) {
        dialsOriginal = dialsOriginal || h == "original";
    }
    // Intercepted: netfilter rewrote the destination (REDIRECT/DNAT), or, with TPROXY, the socket
    // landed on an address:port that is not our listener's.  A customer that reached us
    // directly has no "original" destination to relay to: dialling it would dial ourselves.
    // Behind a balancer the dialled address is the one its header names.
    const bool intercepted = proxied || dest.redirected || dest.local.port != listener.port;
    if (dialsOriginal && !intercepted) {
        logWarning(who + ": mail loop: dialled address [" + dest.dialled.address + "]:" +
                   std::to_string(dest.dialled.port) + " is this proxy itself; connection refused");
        ++metrics_.connectionsRefused;
        refuse(fd, "421 4.3.5 " + config.hostname + " Error: mail loop detected, connection refused\r\n");
        return;
    }
    // Static deny list (access.deny, unless access.allow): refused before any work is done.
    if (defence_->denied(config, client.address, who)) {
        ++metrics_.connectionsRefused;
        refuse(fd, "554 5.7.1 " + config.hostname + " Error: access denied for [" + client.address + "]\r\n");
        return;
    }
    // Bans and per-address limits: refused before any work is done for the client.
    if (const Guard::Admission admission = guard_->admit(client.address, who); !admission.ok) {
        ++metrics_.connectionsRefused;
        if (admission.close) {
            ::close(fd);
        } else {
            refuse(fd, "421 4.7.0 " + config.hostname + " " + admission.reply + "\r\n");
        }
        return;
    }
    evutil_make_socket_nonblocking(fd);
    evutil_make_socket_closeonexec(fd);
    ClientEndpoint endpoint;
    endpoint.address = client.address;
    endpoint.port = client.port;
    endpoint.destAddress = dest.dialled.address;
    endpoint.destPort = dest.dialled.port;
    endpoint.implicitTls = listener.tls == ListenerTls::Implicit;
    endpoint.via = via;
    const std::uint64_t id = nextId_++;
    auto session = std::make_unique<Session>(*this, id, runtime_, fd, endpoint, listenerName);
    Session* raw = session.get();
    sessions_.emplace(id, std::move(session));
    unauthenticated_.emplace(id, raw);
    guard_->sessionOpened(id, client.address);
    ++metrics_.sessionsTotal;
    ++metrics_.sessionsOpen;
    const bool stress = sessions_.size() * 100 >=
                        static_cast<std::size_t>(config.limits.maxSessions) * static_cast<std::size_t>(config.limits.stressThreshold);
    raw->start(stress);
}

bool Server::shedOne() {
    for (auto it = unauthenticated_.begin(); it != unauthenticated_.end(); ++it) {
        Session* victim = it->second;
        if (victim->sheddable()) {
            unauthenticated_.erase(it);  // closing: never counted as a slot to free again
            ++metrics_.sessionsShed;
            victim->shed();
            return true;
        }
    }
    return false;
}

void Server::reload() {
    logInfo("SIGHUP: reloading " + configFile_);
    std::shared_ptr<const Runtime> next;
    try {
        next = loadRuntime(configFile_);
    } catch (const std::exception& e) {
        logError(std::string("reload failed, keeping the running configuration: ") + e.what());
        ++metrics_.reloadFailures;
        return;
    }
    const Config& now = runtime_->config;
    const Config& fresh = next->config;
    if (fresh.auth.saslService == now.auth.saslService && fresh.auth.saslConfigDir == now.auth.saslConfigDir &&
        fresh.auth.backend == now.auth.backend) {
        const auto problems = saslProblems(fresh);
        if (!problems.empty()) {
            logError("reload failed, keeping the running configuration: " + problems.front());
            ++metrics_.reloadFailures;
            return;
        }
    }
    // Compare with the sockets we really hold, not with the last configuration read.
    bool listenersSame = listeners_.size() == fresh.listeners.size();
    for (std::size_t i = 0; listenersSame && i < listeners_.size(); ++i) {
        const auto& a = listeners_[i]->config();
        const auto& b = fresh.listeners[i];
        listenersSame = a.address == b.address && a.port == b.port && a.tls == b.tls && a.transparent == b.transparent &&
                        a.proxyProtocol == b.proxyProtocol && sameBlocks(a.trustedProxies, b.trustedProxies);
    }
    if (!listenersSame) {
        logWarning("reload: changes to listen take effect at the next restart");
    }
    // One line per key, so that the operator sees which edit did not take (the rest did).
    for (const auto& key : restartOnlyChanges(started_, fresh)) {
        logWarning("reload: changes to " + key + " take effect at the next restart");
    }
    // Sessions in progress keep the runtime they started with (shared_ptr).
    runtime_ = std::move(next);
    guard_->reconfigure(runtime_->config.guard);
    defence_->reconfigure(runtime_->config);
    clientNames_->reconfigure(runtime_->config.clientName);
    msaCaps_->configure(runtime_);  // probe again: the MSA may have changed with the reload
    ++metrics_.reloads;
    metrics_.dnsblZones(dnsblZoneNames(runtime_->config));
    migration_.setLimits(migrationLimits(runtime_->config.migration));
    logInfo("reload done: new sessions use the new configuration and certificates");
}

void Server::beginShutdown() {
    if (stopping_) {
        return;
    }
    stopping_ = true;
    listeners_.clear();  // stop accepting at once
    intake_->clear();    // no session yet: nothing to finish
    logInfo("shutting down: " + std::to_string(sessions_.size()) + " sessions, up to " +
            std::to_string(runtime_->config.limits.shutdownGrace) + "s to finish");
    if (sessions_.empty()) {
        finishShutdown();
        return;
    }
    const timeval grace{runtime_->config.limits.shutdownGrace, 0};
    evtimer_add(grace_.get(), &grace);
}

void Server::graceCb(evutil_socket_t, short, void* self) {
    auto* server = static_cast<Server*>(self);
    // Past the grace time: 421 to the rest (a message after "." still gets the MSA's answer).
    std::vector<Session*> open;
    for (auto& [id, session] : server->sessions_) {
        open.push_back(session.get());
    }
    for (Session* s : open) {
        s->shutdown();
    }
    const timeval hard{server->runtime_->config.upstream.dataDoneTimeout, 0};
    server->grace_.reset(evtimer_new(server->base(), [](evutil_socket_t, short, void* arg) {
        static_cast<Server*>(arg)->finishShutdown();
    }, server));
    evtimer_add(server->grace_.get(), &hard);
}

void Server::finishShutdown() {
    event_base_loopexit(base(), nullptr);
}

void Server::signalCb(evutil_socket_t sig, short, void* self) {
    auto* server = static_cast<Server*>(self);
    if (sig == SIGUSR1 || sig == SIGHUP) {
        // logrotate has renamed log_file: the lines from here on (the reload's too) go to
        // the new file.
        if (const std::string problem = logReopenFile(); !problem.empty()) {
            logWarning(problem);
        } else if (!logFilePath().empty()) {
            logInfo(std::string(sig == SIGUSR1 ? "SIGUSR1" : "SIGHUP") + ": log_file " + logFilePath() + " reopened");
        }
    }
    if (sig == SIGHUP) {
        server->reload();
    } else if (sig != SIGUSR1) {
        server->beginShutdown();
    }
}

}  // namespace subproxy
