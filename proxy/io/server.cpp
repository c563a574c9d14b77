#include <sys/socket.h>
#include <unistd.h>

#include "io/server.h"

#include "io/hub.h"

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

// Used by -t and by SIGHUP, so that a reload never promises customers a mechanism the backend
// cannot serve.
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

namespace {

// The configured DNSBL zones' series exist from the start (Metrics::dnsblZones).
std::vector<std::string> dnsblZoneNames(const Config& config) {
    std::vector<std::string> names;
    for (const DnsblZone& zone : config.dnsbl.zones) {
        names.push_back(zone.name);
    }
    return names;
}

// One thread per loop: libevent's own locks would only cost (requests from other threads come
// through the mailbox).
EventBasePtr newLoop() {
    std::unique_ptr<event_config, void (*)(event_config*)> cfg(event_config_new(), event_config_free);
    event_config_set_flag(cfg.get(), EVENT_BASE_FLAG_NOLOCK);
    EventBasePtr base(event_base_new_with_config(cfg.get()));
    if (!base) {
        throw std::runtime_error("cannot create the event loop");
    }
    return base;
}

// Refusals at accept time are written straight to the fresh socket: no session is made.
void refuse(evutil_socket_t fd, const std::string& reply) {
    [[maybe_unused]] ssize_t n = ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::close(fd);
}

}  // namespace

std::shared_ptr<const Runtime> loadRuntimeOrSay(const std::string& configFile) {
    try {
        return loadRuntime(configFile);
    } catch (const ConfigError& e) {
        std::cerr << e.what() << "\n";
    } catch (const std::exception& e) {
        std::cerr << configFile << ": " << e.what() << "\n";
    }
    return nullptr;
}

int checkConfiguration(const std::string& configFile) {
    const std::shared_ptr<const Runtime> runtime = loadRuntimeOrSay(configFile);
    if (!runtime) {
        return 1;
    }
    try {
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

Server::Server(Hub& hub, int index, std::shared_ptr<const Runtime> runtime, bool sharePorts)
    : hub_(hub),
      index_(index),
      runtime_(std::move(runtime)),
      base_(newLoop()),
      mailbox_(std::make_unique<Mailbox>(base_.get())),
      authWorkers_(hub.authPool(), mailbox_->address()) {
    dns_.reset(evdns_base_new(base(), EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE));
    if (!dns_) {
        // No usable resolv.conf: numeric MSA addresses still work; names will fail clearly.
        dns_.reset(evdns_base_new(base(), EVDNS_BASE_DISABLE_WHEN_INACTIVE));
    }
    const Config& config = runtime_->config;
    dnsbl_ = std::make_unique<DnsblResolver>(base(), config.dnsbl, hub.dnsblCache());
    clientNames_ = std::make_unique<ClientNameResolver>(base(), config.clientName);
    intake_ = std::make_unique<ProxyIntake>(base());
    for (const auto& lc : config.listeners) {
        auto listener = std::make_unique<Listener>(
            base(), lc, "421 4.3.2 " + config.hostname + " Error: too many connections, try again later\r\n",
            [this, index = listeners_.size()](evutil_socket_t fd, const sockaddr* peer, int) {
                accept(*listeners_[index], fd, peer);
            },
            !sharePorts ? Listener::Sharing::None : index == 0 ? Listener::Sharing::First : Listener::Sharing::Join);
        listeners_.push_back(std::move(listener));
    }
    grace_.reset(evtimer_new(base(), &Server::graceCb, this));
    metrics_.dnsblZones(dnsblZoneNames(config));
}

Server::~Server() {
    sessions_.clear();
    intake_.reset();       // its events need the loop
    clientNames_.reset();  // after the sessions, whose lookups it serves
    dnsbl_.reset();  // its resolver needs the loop
    listeners_.clear();
    mailbox_.reset();
    // The timers, the resolver and then the loop go with the members, in that order.
}

void Server::run() {
    event_base_dispatch(base());
    // Sessions that outlived the drain (past the hard deadline) go now, on this thread.
    sessions_.clear();
}

Guard& Server::guard() { return hub_.guard(); }
Defence& Server::defence() { return hub_.defence(); }
MsaCaps& Server::msaCaps() { return hub_.msaCaps(); }
AccountStore& Server::accounts() { return hub_.accounts(); }
CredentialStore& Server::credentials() { return hub_.credentials(); }
MigrationRecorder Server::migration() { return MigrationRecorder(hub_.migration(), hub_.shared()); }

Session* Server::findSession(std::uint64_t id) {
    auto it = sessions_.find(id);
    return it == sessions_.end() ? nullptr : it->second.get();
}

void Server::sessionAuthenticated(std::uint64_t id) {
    if (unauthenticated_.erase(id) != 0) {
        unauthenticatedCount_.fetch_sub(1, std::memory_order_relaxed);
    }
}

void Server::sessionClosed(std::uint64_t id) {
    guard().sessionClosed(id);
    sessionAuthenticated(id);  // no longer waiting to be shed
    if (sessions_.erase(id) != 0) {
        hub_.sessionGone();
        if (metrics_.sessionsOpen > 0) {
            --metrics_.sessionsOpen;
        }
    }
    if (stopping_ && sessions_.empty()) {
        finishShutdown();
    }
}

bool Server::refusedAtCapacity(evutil_socket_t fd, const std::string& who) {
    const Config& config = runtime_->config;
    if (stopping_) {
        refuse(fd, "421 4.3.2 " + config.hostname + " Service shutting down, try again later\r\n");
        return true;
    }
    // Connections still sending their PROXY header hold a descriptor too.
    if (hub_.openSessions() + intake_->pending() >= static_cast<std::size_t>(config.limits.maxSessions) &&
        !shedOne() && !hub_.shedElsewhere(index_)) {
        logWarning(who + ": too many sessions (limits.max_sessions=" + std::to_string(config.limits.maxSessions) +
                   ", all authenticated or authenticating), connection refused");
        refuse(fd, "421 4.3.2 " + config.hostname + " Error: too many connections, try again later\r\n");
        return true;
    }
    return false;
}

void Server::accept(const Listener& listener, evutil_socket_t fd, const sockaddr* peer) {
    const Endpoint client = endpointOf(peer);
    const std::string who = "[" + client.address + "]:" + std::to_string(client.port);
    if (refusedAtCapacity(fd, who)) {
        ++metrics_.connectionsRefused;
        return;
    }
    if (!listener.config().proxyProtocol) {
        admit(listener.config(), listener.name(), fd, client, originalDestination(fd), false);
        return;
    }
    // Behind a load balancer: the peer is the balancer; the customer is named by its PROXY
    // header.  Only a trusted peer may name one: anyone else could claim any address.  No
    // reply to the rest: whatever connects here is not an SMTP client of ours.
    if (!listener.config().trustedProxies.contains(client.ip)) {
        logWarning(who + ": not in trusted_proxies of listener " + listener.name() + "; connection closed");
        ++metrics_.connectionsRefused;
        ::close(fd);
        return;
    }
    intake_->start(fd, who, runtime_->config.limits.proxyHeaderTimeout,
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
    dest.dialled = {header->destination, formatIpAddress(header->destination), header->destinationPort};
    dest.local = dest.dialled;
    const Endpoint customer{header->source, formatIpAddress(header->source), header->sourcePort};
    admit(listener, listenerName, fd, customer, dest, true, "PROXY v" + std::to_string(header->version) + " from " + who);
}

bool Server::refusedForAddress(const ListenerConfig& listener, evutil_socket_t fd, const Endpoint& client,
                               const Destination& dest, bool proxied, const std::string& who) {
    const Config& config = runtime_->config;
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
        refuse(fd, "421 4.3.5 " + config.hostname + " Error: mail loop detected, connection refused\r\n");
        return true;
    }
    // Static deny list (access.deny, unless access.allow): refused before any work is done.
    if (defence().denied(config, client.ip, who)) {
        refuse(fd, "554 5.7.1 " + config.hostname + " Error: access denied for [" + client.address + "]\r\n");
        return true;
    }
    // Bans and per-address limits: refused before any work is done for the client.
    if (const Guard::Admission admission = guard().admit(client.ip, who); !admission.ok) {
        if (admission.close) {
            ::close(fd);
        } else {
            refuse(fd, "421 4.7.0 " + config.hostname + " " + admission.reply + "\r\n");
        }
        return true;
    }
    return false;
}

void Server::admit(const ListenerConfig& listener, const std::string& listenerName, evutil_socket_t fd,
                   const Endpoint& client, const Destination& dest, bool proxied, const std::string& via) {
    const Config& config = runtime_->config;
    const std::string who = "[" + client.address + "]:" + std::to_string(client.port);
    if (refusedForAddress(listener, fd, client, dest, proxied, who)) {
        ++metrics_.connectionsRefused;
        return;
    }
    ClientEndpoint endpoint;  // fd: non-blocking and close-on-exec from accept4 (Listener)
    endpoint.ip = client.ip;
    endpoint.address = client.address;
    endpoint.port = client.port;
    endpoint.destAddress = dest.dialled.address;
    endpoint.destPort = dest.dialled.port;
    endpoint.implicitTls = listener.tls == ListenerTls::Implicit;
    endpoint.via = via;
    const std::uint64_t id = hub_.nextSessionId();
    auto session = std::make_unique<Session>(*this, id, runtime_, fd, endpoint, listenerName);
    Session* raw = session.get();
    sessions_.emplace(id, std::move(session));
    unauthenticated_.emplace(id, raw);
    unauthenticatedCount_.fetch_add(1, std::memory_order_relaxed);
    hub_.sessionOpened();
    guard().sessionOpened(id, client.ip);
    ++metrics_.sessionsTotal;
    ++metrics_.sessionsOpen;
    const bool stress = hub_.openSessions() * 100 >= static_cast<std::size_t>(config.limits.maxSessions) *
                                                         static_cast<std::size_t>(config.limits.stressThreshold);
    raw->start(stress);
}

bool Server::shedOne() {
    for (auto it = unauthenticated_.begin(); it != unauthenticated_.end(); ++it) {
        Session* victim = it->second;
        if (victim->sheddable()) {
            unauthenticated_.erase(it);  // closing: never counted as a slot to free again
            unauthenticatedCount_.fetch_sub(1, std::memory_order_relaxed);
            ++metrics_.sessionsShed;
            victim->shed();
            return true;
        }
    }
    return false;
}

void Server::setRuntime(std::shared_ptr<const Runtime> runtime) {
    // Sessions in progress keep the runtime they started with (shared_ptr).
    runtime_ = std::move(runtime);
    dnsbl_->reconfigure(runtime_->config.dnsbl);
    clientNames_->reconfigure(runtime_->config.clientName);
    metrics_.dnsblZones(dnsblZoneNames(runtime_->config));
}

void Server::beginShutdown() {
    if (stopping_) {
        return;
    }
    stopping_ = true;
    listeners_.clear();  // stop accepting at once
    intake_->clear();    // no session yet: nothing to finish
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

}  // namespace subproxy
