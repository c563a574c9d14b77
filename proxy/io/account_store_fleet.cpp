// AccountStore, what the other gateways did (see account_store.h; the messages and scripts are
// fleet_accounts.h's, sent by shared_accounts.cpp).  Everything here runs on the control loop.
#include "io/account_store.h"
#include "io/shared_state.h"
#include "ops/metrics.h"
#include "os/log.h"
#include "wire/text_util.h"

namespace subproxy {

FleetCountUpdate AccountStore::countUpdate(const std::string& key, unsigned messages, unsigned recipients,
                                           std::int64_t t) {
    FleetCountUpdate u;
    u.user = key;
    u.messages = messages;
    u.recipients = recipients;
    u.limit = effectiveLimit(book_.config(), book_.view(key, t));
    u.now = t;
    u.window = book_.config().limits.window;
    return u;
}

std::optional<FleetCountUpdate> AccountStore::fleetRead(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!book_.knows(key) || !limitsApply(book_.config())) {
        return std::nullopt;  // no session here yet: its login will read the count
    }
    return countUpdate(key, 0, 0, now());
}

void AccountStore::adoptCounts(const std::string& key, const std::optional<FleetCounts>& counts, unsigned messages,
                               unsigned recipients) {
    std::lock_guard<std::mutex> lock(mutex_);
    book_.adoptCounts(key, counts ? &*counts : nullptr, messages, recipients, now());
}

void AccountStore::adoptPlaces(const std::string& key, const FleetPlaces& places, const std::string& logPrefix) {
    std::vector<AccountFlag> raised;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        raised = book_.adoptPlaces(key, places, now());
        urgent_ = urgent_ || !raised.empty();
        for (const AccountFlag& f : raised) {
            willSend(key, f.reason);
        }
    }
    for (const AccountFlag& f : raised) {
        // The line a local pass writes, with the fleet's evidence; counted once, here.
        logWarning(logPrefix + flaggedLogLine(key, f.reason, f.evidence));
        fleetFlags_[static_cast<int>(f.reason)].fetch_add(1, std::memory_order_relaxed);
        if (shared_) {
            shared_->accountFlagged(key, f);
        }
    }
}

void AccountStore::adoptFlag(const std::string& key, const AccountFlag& flag) {
    bool raised;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        raised = book_.adoptFlag(key, flag, now());
        urgent_ = urgent_ || raised;
    }
    if (raised) {
        // Not the fail2ban line: the gateway that raised it wrote that one.
        logInfo("accounts: " + std::string(flagReasonName(flag.reason)) + " flag on " + printable(key) +
                " raised by another gateway: " + printable(flag.evidence));
    }
}

void AccountStore::adoptUnflag(const std::string& key, FlagReason reason) {
    std::lock_guard<std::mutex> lock(mutex_);
    urgent_ = book_.unflag(key, reason) || urgent_;
}

void AccountStore::adoptClear(const std::string& key) {
    bool cleared;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        cleared = book_.clear(key);
        urgent_ = urgent_ || cleared;
    }
    if (cleared) {
        logInfo("accounts: flags on " + printable(key) + " cleared by the operator on another gateway");
    }
}

void AccountStore::willSend(const std::string& key, FlagReason reason) {
    if (shared_) {
        ++unsent_[{key, reason}];
    }
}

void AccountStore::flagSent(const std::string& key, FlagReason reason) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = unsent_.find({key, reason});
    if (it != unsent_.end() && --it->second == 0) {
        unsent_.erase(it);
    }
}

void AccountStore::reconcileFlags(const FleetFlagList& fleet) {
    AccountBook::FlagSync sync;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        AccountBook::FlagKeys unsent;
        for (const auto& entry : unsent_) {
            unsent.insert(entry.first);
        }
        sync = book_.reconcileFlags(fleet.flagged, fleet.cleared, unsent, now());
        urgent_ = urgent_ || sync.added > 0 || sync.cleared > 0;
    }
    if (sync.added > 0 || sync.cleared > 0) {
        logInfo("accounts: flags synchronised with Redis: " + std::to_string(sync.added) + " from other gateways, " +
                std::to_string(sync.cleared) + " cleared elsewhere");
    }
    if (fleet.unreadable > 0) {
        logWarning("accounts: " + std::to_string(fleet.unreadable) + " flags in Redis that this version cannot "
                   "read were left alone (written by a newer subproxy?)");
    }
}

void AccountStore::addCounts(Metrics& into) const {
    for (int i = 0; i < kFlagReasons; ++i) {
        into.accounts.flags[i] += fleetFlags_[i].load(std::memory_order_relaxed);
    }
}

}  // namespace subproxy
