// The Guard's side of several gateways (issue 11): what the fleet's state (shared_state.h)
// brings in.  See guard.h.
#include "io/guard.h"

#include "io/guard_state_file.h"
#include "os/log.h"

namespace subproxy {

void Guard::adoptBan(const std::string& key, std::int64_t until, unsigned failures, bool here) {
    const std::int64_t now = wallNow();
    std::lock_guard<std::mutex> lock(mutex_);
    if (!bans_.adoptBan(key, until, failures, now)) {
        return;  // in force already (this gateway's own, or the message came twice)
    }
    if (here) {
        logWarning("ban: " + std::to_string(failures) + " AUTH failures from " + key + " on all gateways in " +
                   std::to_string(config_.policy.window) + "s; banned for " + std::to_string(until - now) + "s");
        countBan();
    } else {
        logInfo("state: ban on " + key + " from another gateway (" + std::to_string(failures) +
                " failures); banned here for " + std::to_string(until - now) + "s");
    }
    flushSoon();
}

void Guard::adoptLift(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!bans_.lift(key, wallNow()).empty()) {
        logInfo("state: ban on " + key + " lifted (by the operator, on some gateway)");
        flushSoon();
    }
}

void Guard::adoptFailures(const std::string& key, unsigned addressFailures, const std::string& user,
                          unsigned userFailures) {
    std::lock_guard<std::mutex> lock(mutex_);
    bans_.adoptFailures(key, addressFailures, user, userFailures, wallNow());
}

void Guard::reconcileBans(const std::vector<SharedBan>& fleet, const std::set<std::string>& keep) {
    const std::int64_t now = wallNow();
    std::set<std::string> inFleet;
    std::size_t added = 0;
    std::size_t lifted = 0;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        for (const auto& b : fleet) {
            inFleet.insert(b.key);
            added += bans_.adoptBan(b.key, b.until, b.failures, now) ? 1 : 0;
        }
        for (const auto& b : bans_.bans(now)) {
            // Lifted elsewhere while this gateway was not listening (or Redis lost it: then the
            // fleet's view wins too, as it would for every other gateway).
            if (inFleet.count(b.key) == 0 && keep.count(b.key) == 0) {
                bans_.lift(b.key, now);
                ++lifted;
            }
        }
    }
    if (added > 0 || lifted > 0) {
        logInfo("state: ban list synchronised with Redis: " + std::to_string(added) + " bans from other gateways, " +
                std::to_string(lifted) + " lifted elsewhere");
        flushSoon();
    }
}

std::string Guard::liftLocal(const std::string& addressOrKey) {
    std::string key;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        key = bans_.lift(addressOrKey, wallNow());
    }
    if (!key.empty()) {
        logInfo("guard: ban on " + key + " lifted by the operator");
        flush();
    }
    return key;
}

}  // namespace subproxy
