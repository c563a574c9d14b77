// See guard.h.  The control socket and `subproxy -b/-u` are in guard_control.cpp, the state
// file's reader in guard_state_file.cpp.
#include <sys/stat.h>
#include <unistd.h>

#include "io/guard.h"

#include <event2/bufferevent.h>
#include <event2/listener.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "io/guard_state_file.h"
#include "io/shared_state.h"
#include "os/atomic_file.h"
#include "os/log.h"
#include "wire/text_util.h"

namespace subproxy {

namespace {

std::string seconds(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", s);
    return buf;
}

}  // namespace

Guard::Guard(event_base* base, const GuardConfig& config)
    : base_(base),
      config_(config),
      stateFile_(config.stateFile),
      controlPath_(config.controlSocket),
      bans_(config.policy),
      rates_(config.policy.maxTracked) {
    flushTimer_.reset(evtimer_new(base_, &Guard::flushCb, this));
    flushSoonTimer_.reset(event_new(base_, -1, EV_PERSIST, &Guard::flushSoonCb, this));
    const timeval second{1, 0};
    event_add(flushSoonTimer_.get(), &second);
    if (!stateFile_.empty()) {
        // Before the listeners exist (Server's constructor): no customer waits on a bound
        // socket meanwhile.  Announced, so a slow start on a huge file is explained.
        struct stat st {};
        const bool found = ::stat(stateFile_.c_str(), &st) == 0;
        const bool exists = found || errno != ENOENT;  // unreadable: say so below
        if (found) {
            logInfo("guard: reading state file " + stateFile_ + " (" + std::to_string(st.st_size) + " bytes)");
        }
        std::string error;
        BanList::LoadResult result;
        if (!exists) {
            // nothing saved yet
        } else if (!loadGuardStateFile(stateFile_, bans_, wallNow(), result, error)) {
            logWarning("guard: cannot read state file " + stateFile_ + ": " + error + "; starting with no bans");
        } else {
            logInfo("guard: loaded " + stateFile_ + ": " + std::to_string(bans_.banCount()) + " bans, " +
                    std::to_string(bans_.trackedAddresses()) + " addresses and " +
                    std::to_string(bans_.trackedUsers()) + " user names with recent AUTH failures" +
                    (result.unreadable ? "; " + std::to_string(result.unreadable) + " unreadable lines skipped"
                                       : std::string()) +
                    (result.dropped ? "; " + std::to_string(result.dropped) +
                                          " entries dropped (guard.max_tracked=" +
                                          std::to_string(config_.policy.maxTracked) +
                                          "): kept the bans ending last and the latest counters"
                                    : std::string()));
        }
    }
    openControlSocket();
    scheduleFlush();
}

Guard::~Guard() {
    flush();
    for (const auto& [bev, id] : controlConns_) {
        bufferevent_free(bev);
    }
    if (control_) {
        evconnlistener_free(control_);
        ::unlink(controlPath_.c_str());
    }
}

void Guard::reconfigure(const GuardConfig& config) {
    std::lock_guard<std::mutex> lock(mutex_);
    // state_file and control_socket stay as they were (Server::reload warns: restartOnlyChanges).
    config_ = config;
    bans_.setPolicy(config.policy);
    rates_.setCapacity(config.policy.maxTracked);
}

// ---------------------------------------------------------------------------------------------
// Connections

Guard::Admission Guard::admit(const IpAddress& ip, const std::string& who) {
    std::lock_guard<std::mutex> lock(mutex_);
    Admission a;
    if (trusted(ip)) {
        return a;
    }
    const std::int64_t now = wallNow();
    const std::string key = bans_.addressKey(ip);
    if (const std::int64_t left = bans_.banRemaining(ip, now); left > 0) {
        ++counts_.banRefusals;
        logWarning(who + ": ban: connection refused, " + key + " is banned for another " + std::to_string(left) + "s");
        a.ok = false;
        a.close = config_.banClose;
        a.reply = "Error: too many failed authentications from your address, try again later";
        return a;
    }
    if (config_.connectionRate > 0) {
        const unsigned n = rates_.add(key, now, config_.connectionRateWindow);
        if (n > static_cast<unsigned>(config_.connectionRate)) {
            logWarning(who + ": limit: connection rate " + std::to_string(n) + " in " +
                       std::to_string(config_.connectionRateWindow) + "s from " + key +
                       " (guard.connection_rate=" + std::to_string(config_.connectionRate) + "); connection refused");
            a.ok = false;
            a.reply = "Error: too many connections from your address, try again later";
            return a;
        }
    }
    if (config_.maxSessionsPerClient > 0) {
        auto it = sessionsPerKey_.find(key);
        const unsigned open = it == sessionsPerKey_.end() ? 0 : it->second;
        if (open >= static_cast<unsigned>(config_.maxSessionsPerClient)) {
            logWarning(who + ": limit: " + std::to_string(open) + " sessions open from " + key +
                       " (guard.max_sessions_per_client=" + std::to_string(config_.maxSessionsPerClient) +
                       "); connection refused");
            a.ok = false;
            a.reply = "Error: too many connections from your address, try again later";
            return a;
        }
    }
    return a;
}

void Guard::sessionOpened(std::uint64_t id, const IpAddress& ip) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (trusted(ip)) {
        return;
    }
    const std::string key = bans_.addressKey(ip);
    ++sessionsPerKey_[key];
    sessionKeys_.emplace(id, key);
}

void Guard::sessionClosed(std::uint64_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessionKeys_.find(id);
    if (it == sessionKeys_.end()) {
        return;
    }
    auto count = sessionsPerKey_.find(it->second);
    if (count != sessionsPerKey_.end() && --count->second == 0) {
        sessionsPerKey_.erase(count);  // bounded by the sessions open, not by history
    }
    sessionKeys_.erase(it);
}

// ---------------------------------------------------------------------------------------------
// AUTH

double Guard::authFailed(const IpAddress& ip, const std::string& who, const std::string& user) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (trusted(ip)) {
        return 0;
    }
    const std::int64_t now = wallNow();
    const auto f = bans_.recordFailure(ip, user, now);
    if (f.banned) {
        logWarning(who + ": ban: " + std::to_string(f.addressFailures) + " AUTH failures from " + f.key + " in " +
                   std::to_string(config_.policy.window) + "s; banned for " + std::to_string(config_.policy.banTime) +
                   "s");
        countBan();
        flushSoon();  // a ban must survive a crash
        if (shared_) {
            shared_->banned(f.key, now + config_.policy.banTime, f.addressFailures);
        }
    }
    if (shared_) {
        shared_->authFailed(f.key, user);  // the fleet's count may ban it on every gateway
    }
    if (f.delay > 0) {
        ++counts_.authDelayedReplies;
        logInfo(who + ": auth penalty: reply delayed " + seconds(f.delay) + "s (" +
                std::to_string(f.addressFailures) + " failures from " + f.key + ", " +
                std::to_string(f.userFailures) + " for sasl_username=" + printable(user) + ")");
    }
    return f.delay;
}

void Guard::addCounts(Metrics& into) const {
    std::lock_guard<std::mutex> lock(mutex_);
    into.bans += counts_.bans;
    into.banRefusals += counts_.banRefusals;
    into.authDelayedReplies += counts_.authDelayedReplies;
}

std::size_t Guard::activeBans() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return bans_.activeBans(wallNow());
}

void Guard::authSucceeded(const std::string& user) {
    std::lock_guard<std::mutex> lock(mutex_);
    bans_.recordSuccess(user);
    if (shared_) {
        shared_->authSucceeded(user);
    }
}

void Guard::trapBan(const IpAddress& ip, const std::string& who, const std::string& why) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (trusted(ip)) {
        return;
    }
    const std::int64_t now = wallNow();
    bans_.ban(ip, now, config_.policy.banTime, 0);
    logWarning(who + ": ban: " + why + " from " + bans_.addressKey(ip) + "; banned for " +
               std::to_string(config_.policy.banTime) + "s");
    countBan();
    flushSoon();  // a ban must survive a crash
    if (shared_) {
        shared_->banned(bans_.addressKey(ip), now + config_.policy.banTime, 0);
    }
}

// ---------------------------------------------------------------------------------------------
// State file

void Guard::scheduleFlush() {
    const timeval every{config_.stateInterval, 0};
    evtimer_add(flushTimer_.get(), &every);
}

void Guard::flushSoonCb(evutil_socket_t, short, void* self) {
    auto* guard = static_cast<Guard*>(self);
    if (guard->flushWanted_.exchange(false, std::memory_order_relaxed)) {
        guard->flush();
    }
}

void Guard::flushCb(evutil_socket_t, short, void* self) {
    auto* guard = static_cast<Guard*>(self);
    {
        std::lock_guard<std::mutex> lock(guard->mutex_);
        guard->bans_.prune(wallNow());
    }
    guard->flush();
    guard->scheduleFlush();
}

void Guard::flush() {
    if (stateFile_.empty()) {
        return;
    }
    std::string text;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!bans_.dirty()) {
            return;
        }
        text = bans_.serialise(wallNow());
        bans_.clearDirty();  // a ban after this point makes it dirty again
    }
    std::string error;  // the write (and its fsync) outside the lock: the loops go on admitting
    if (!writeFileAtomically(stateFile_, text, kGuardStateFileMode, error)) {
        if (!saveFailing_) {  // once per outage, not every state_interval
            logError("guard: state file not saved: " + error);
        }
        saveFailing_ = true;
        std::lock_guard<std::mutex> lock(mutex_);
        bans_.markDirty();  // the next flush tries again
        return;
    }
    if (saveFailing_) {
        logInfo("guard: state file saved again: " + stateFile_);
    }
    saveFailing_ = false;
}

}  // namespace subproxy
