// See defence.h.
#include "io/defence.h"

#include <algorithm>
#include <chrono>

#include "defence/access_list.h"
#include "io/shared_state.h"
#include "os/log.h"

namespace subproxy {

TarpitSlot::~TarpitSlot() {
    std::lock_guard<std::mutex> lock(defence_.mutex_);
    --defence_.tarpitted_;
}

Defence::Defence(const Config& config)
    : fanout_(config.trap.fanoutLimit, config.trap.fanoutWindow, config.trap.fanoutMaxClients),
      greetPass_(static_cast<std::size_t>(config.trap.greetCacheSize)),
      fleetFanOut_(static_cast<std::size_t>(config.trap.fanoutMaxClients)),
      fanoutLimit_(config.trap.fanoutLimit) {}

void Defence::reconfigure(const Config& config) {
    std::lock_guard<std::mutex> lock(mutex_);
    fanout_.configure(config.trap.fanoutLimit, config.trap.fanoutWindow, config.trap.fanoutMaxClients);
    greetPass_.setMax(static_cast<std::size_t>(config.trap.greetCacheSize));
    fleetFanOut_.setMax(static_cast<std::size_t>(config.trap.fanoutMaxClients));
    fanoutLimit_ = config.trap.fanoutLimit;
}

int Defence::tarpitted() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return tarpitted_;
}

bool Defence::denied(const Config& config, const IpAddress& ip, const std::string& who) const {
    if (config.access.deny.empty() || checkAccess(config.access, ip) != AccessVerdict::Deny) {
        return false;
    }
    const Cidr* rule = config.access.deny.find(ip);
    logWarning(who + ": access: denied by access.deny " + (rule ? rule->str() : std::string()) +
               ", connection refused");
    return true;
}

namespace {
std::int64_t monotonicSeconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}
}  // namespace

bool Defence::greetPassed(const std::string& client) {
    std::lock_guard<std::mutex> lock(mutex_);
    return greetPass_.find(client, monotonicSeconds()) != nullptr;
}

void Defence::rememberGreetPass(const std::string& client, int ttl) {
    adoptGreetPass(client, ttl);
    if (shared_) {
        shared_->greetPassed(client, ttl);
    }
}

void Defence::adoptGreetPass(const std::string& client, int ttl) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (ttl > 0) {
        greetPass_.put(client, {}, monotonicSeconds() + ttl);
    }
}

int Defence::recordFanOut(const std::string& client, const std::string& dialled) {
    if (shared_) {
        shared_->fanOut(client, dialled);
    }
    std::lock_guard<std::mutex> lock(mutex_);
    const std::int64_t now = monotonicSeconds();
    int seen = fanout_.record(client, dialled, now);
    // The fleet's count is as of the previous connection's update (this one may be new to it,
    // or not: it is not added, so a customer is never counted twice for one address).
    if (const auto* fleet = fleetFanOut_.find(client, now); fleet && !fleet->answers.empty()) {
        seen = std::max(seen, std::min(static_cast<int>(fleet->answers.front()), fanoutLimit_ + 1));
    }
    return seen;
}

void Defence::adoptFanOut(const std::string& client, int dialled, int window) {
    std::lock_guard<std::mutex> lock(mutex_);
    fleetFanOut_.put(client, {static_cast<std::uint32_t>(dialled)}, monotonicSeconds() + window);
}

std::unique_ptr<TarpitSlot> Defence::acquireTarpit(int max) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (tarpitted_ >= max) {
        return nullptr;
    }
    ++tarpitted_;
    return std::make_unique<TarpitSlot>(*this);
}

}  // namespace subproxy
