#include <pthread.h>
#include <unistd.h>

#include "io/hub.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <ctime>
#include <mutex>

#include "os/log.h"

namespace subproxy {

namespace {

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

}  // namespace

int workerCount(const Config& config) {
    if (config.workers > 0) {
        return config.workers;
    }
    const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
    return static_cast<int>(std::clamp<long>(cpus, 1, kMaxWorkers));
}

Hub::Hub(std::string configFile, std::shared_ptr<const Runtime> runtime)
    : configFile_(std::move(configFile)), runtime_(std::move(runtime)), started_(runtime_->config) {
    base_.reset(event_base_new());
    if (!base_) {
        throw std::runtime_error("cannot create the event loop");
    }
    dns_.reset(evdns_base_new(base(), EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE));
    if (!dns_) {
        dns_.reset(evdns_base_new(base(), EVDNS_BASE_DISABLE_WHEN_INACTIVE));
    }
    mailbox_ = std::make_unique<Mailbox>(base());
    const Config& config = runtime_->config;
    // The guard's state first, before any listener and before the signal events: a customer
    // must not connect to a bound socket that nobody serves while a big state file loads, and
    // a SIGTERM or SIGINT meanwhile keeps its default action (the process ends at once;
    // nothing is served yet, nothing is lost) instead of waiting in libevent's queue.
    guard_ = std::make_unique<Guard>(base(), config.guard);
    accounts_ = std::make_unique<AccountStore>(base(), config);
    guard_->setCommandExtension([this](const std::string& line) { return accounts_->command(line); });
    authPool_ = std::make_unique<AuthPool>(config.auth.backend == AuthBackend::Sasl ? config.auth.workers : 0,
                                           config.auth.maxWorkers);
    defence_ = std::make_unique<Defence>(config);
    credentials_ = std::make_unique<CredentialStore>(config.auth);
    msaCaps_ = std::make_unique<MsaCaps>(base(), dns_.get());
    if (config.state.backend == StateBackend::Redis) {
        shared_ = std::make_unique<SharedState>(base(), mailbox_->address(), config, *guard_, *defence_, *accounts_);
        guard_->setShared(shared_.get());
        defence_->setShared(shared_.get());
        accounts_->setShared(shared_.get());
    }
    metrics_.startedAt = static_cast<std::int64_t>(std::time(nullptr));
    migration_.with([&](MigrationReport& r) { r.setLimits(migrationLimits(config.migration)); });
    dnsblCache_.with([&](DnsblCache& c) { c.setMax(static_cast<std::size_t>(config.dnsbl.cacheSize)); });
    const int count = workerCount(config);
    for (int i = 0; i < count; ++i) {
        workers_.push_back(std::make_unique<Server>(*this, i, runtime_, count > 1));
    }
    for (int sig : {SIGHUP, SIGTERM, SIGINT, SIGUSR1}) {
        signals_.emplace_back(evsignal_new(base(), sig, &Hub::signalCb, this));
        event_add(signals_.back().get(), nullptr);
    }
    std::signal(SIGPIPE, SIG_IGN);
}

Hub::~Hub() {
    for (auto& thread : threads_) {
        if (thread.joinable()) {
            thread.join();
        }
    }
    workers_.clear();
    if (shared_) {  // the Redis connections live on the control loop; before the guard they feed
        guard_->setShared(nullptr);
        defence_->setShared(nullptr);
        accounts_->setShared(nullptr);
        shared_.reset();
    }
    msaCaps_.reset();  // its probe connection and timer need the loop and the resolver
    guard_.reset();    // writes the state file; before the loop it lives on goes
    accounts_.reset();  // likewise
    mailbox_.reset();
}

int Hub::run() {
    std::string names;
    for (const auto& l : runtime_->config.listeners) {
        names += " " + (l.address.find(':') != std::string::npos ? "[" + l.address + "]" : l.address) + ":" +
                 std::to_string(l.port);
    }
    logInfo("subproxy " SUBPROXY_VERSION " started; listening on" + names + " with " +
            std::to_string(workers_.size()) + (workers_.size() == 1 ? " worker" : " workers"));
    msaCaps_->configure(runtime_);  // the first probe of the MSA's capabilities
    if (shared_) {
        shared_->start();  // connects in the background: no session waits for Redis
    }
    // Signals are the control loop's: the workers' threads block them.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (auto& worker : workers_) {
        threads_.emplace_back([this, w = worker.get()] {
            // "top -H" and "ps -L" show each loop's CPU under this name.
            const std::string name = "subproxy-w" + std::to_string(w->index());
            pthread_setname_np(pthread_self(), name.c_str());
            w->run();
            mailbox_->post([this] { workerStopped(); });
        });
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    event_base_dispatch(base());
    for (auto& thread : threads_) {
        thread.join();
    }
    threads_.clear();
    logInfo("subproxy stopped");
    return 0;
}

void Hub::workerStopped() {
    if (++stoppedWorkers_ == static_cast<int>(workers_.size())) {
        event_base_loopexit(base(), nullptr);
    }
}

bool Hub::shedElsewhere(int askingWorker) {
    for (auto& worker : workers_) {
        if (worker->index() != askingWorker && worker->unauthenticated() > 0) {
            Server* w = worker.get();
            w->post([w] { w->shedOne(); });
            return true;
        }
    }
    return false;
}

Metrics Hub::metrics(std::vector<std::uint64_t>* perWorker) const {
    struct Gather {
        std::mutex mutex;
        std::condition_variable done;
        std::size_t pending = 0;
        Metrics sum;
        std::vector<std::uint64_t> sessions;
    };
    auto gather = std::make_shared<Gather>();
    gather->pending = workers_.size();
    gather->sessions.resize(workers_.size());
    for (const auto& worker : workers_) {
        Server* w = worker.get();
        // Copied on the worker's own thread: its counters are never touched by two threads.
        w->post([gather, w] {
            const Metrics mine = w->metrics();
            std::lock_guard<std::mutex> lock(gather->mutex);
            addMetrics(gather->sum, mine);
            gather->sessions[static_cast<std::size_t>(w->index())] = mine.sessionsTotal;
            --gather->pending;
            gather->done.notify_one();
        });
    }
    Metrics total = metrics_;
    guard_->addCounts(total);
    accounts_->addCounts(total);
    if (shared_) {
        shared_->addCounts(total);
    }
    std::unique_lock<std::mutex> lock(gather->mutex);
    // A worker answers within one turn of its loop; one that has stopped (drained) never does.
    gather->done.wait_for(lock, std::chrono::seconds(1), [&] { return gather->pending == 0; });
    addMetrics(total, gather->sum);
    if (perWorker) {
        *perWorker = gather->sessions;
    }
    return total;
}

void Hub::reload() {
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
    // Compare with the sockets we really hold (bound at start), not with the last reload.
    bool listenersSame = started_.listeners.size() == fresh.listeners.size();
    for (std::size_t i = 0; listenersSame && i < fresh.listeners.size(); ++i) {
        const auto& a = started_.listeners[i];
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
    runtime_ = std::move(next);
    guard_->reconfigure(runtime_->config.guard);
    defence_->reconfigure(runtime_->config);
    accounts_->reconfigure(runtime_->config);
    credentials_->reconfigure(runtime_->config.auth);
    if (shared_) {
        shared_->reconfigure(runtime_->config);
    }
    msaCaps_->configure(runtime_);  // probe again: the MSA may have changed with the reload
    ++metrics_.reloads;
    migration_.with([&](MigrationReport& r) { r.setLimits(migrationLimits(runtime_->config.migration)); });
    dnsblCache_.with([&](DnsblCache& c) { c.setMax(static_cast<std::size_t>(runtime_->config.dnsbl.cacheSize)); });
    for (auto& worker : workers_) {
        Server* w = worker.get();
        w->post([w, runtime = runtime_] { w->setRuntime(runtime); });
    }
    logInfo("reload done: new sessions use the new configuration and certificates");
}

void Hub::beginShutdown() {
    if (stopping_) {
        return;
    }
    stopping_ = true;
    logInfo("shutting down: " + std::to_string(openSessions()) + " sessions, up to " +
            std::to_string(runtime_->config.limits.shutdownGrace) + "s to finish");
    for (auto& worker : workers_) {
        Server* w = worker.get();
        w->post([w] { w->beginShutdown(); });
    }
}

void Hub::signalCb(evutil_socket_t sig, short, void* self) {
    auto* hub = static_cast<Hub*>(self);
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
        hub->reload();
    } else if (sig != SIGUSR1) {
        hub->beginShutdown();
    }
}

}  // namespace subproxy
