// AccountBook, what the other gateways add (see account_book.h and fleet_accounts.h).
#include <algorithm>

#include "defence/account_book.h"
#include "defence/fleet_accounts.h"

namespace subproxy {

void AccountBook::fleetSent(const std::string& key, unsigned messages, unsigned recipients, std::int64_t now) {
    User& u = user(key, now);
    u.fleetSentMessages += messages;
    u.fleetSentRecipients += recipients;
}

void AccountBook::adoptCounts(const std::string& key, const FleetCounts* counts, unsigned messages,
                              unsigned recipients, std::int64_t now) {
    User& u = user(key, now);
    u.fleetSentMessages -= std::min(u.fleetSentMessages, messages);
    u.fleetSentRecipients -= std::min(u.fleetSentRecipients, recipients);
    if (!counts) {
        return;  // the last figure heard stays (and decays)
    }
    u.fleetMessages.assign(counts->messages);
    u.fleetRecipients.assign(counts->recipients);
    u.fleetMessages.prune(now, config_.limits.window);
    u.fleetRecipients.prune(now, config_.limits.window);
}

std::vector<AccountFlag> AccountBook::adoptPlaces(const std::string& key, const FleetPlaces& places,
                                                  std::int64_t now) {
    User& u = user(key, now);
    const int window = config_.places.window;
    std::vector<AccountFlag> raised;
    const auto check = [&](FlagReason reason, unsigned fleet, const RecentSet& local, unsigned max,
                           const std::vector<std::string>& members, const char* what) {
        // At or below this gateway's own count, login() has judged it already (and flagged
        // it with this gateway's evidence).
        if (max == 0 || fleet <= max || fleet <= local.count(now, window)) {
            return;
        }
        std::string list;
        for (const std::string& m : members) {
            list += (list.empty() ? "" : ", ") + m;
        }
        const std::string evidence = std::to_string(fleet) + " " + what + " in " + std::to_string(window) +
                                     "s on all gateways (max " + std::to_string(max) + "): " + list;
        if (flag(key, reason, fleet, evidence, now)) {
            raised.push_back(AccountFlag{reason, now, now, fleet, evidence});
        }
    };
    check(FlagReason::ManyAddresses, places.addresses, u.addresses, config_.places.maxAddresses,
          places.addressList, "addresses");
    check(FlagReason::ManyDestinations, places.destinations, u.destinations, config_.places.maxDestinations,
          places.destinationList, "destinations");
    return raised;
}

bool AccountBook::adoptFlag(const std::string& key, const AccountFlag& flag, std::int64_t now) {
    User& u = user(key, now);
    dirty_ = true;
    for (AccountFlag& f : u.flags) {
        if (f.reason == flag.reason) {
            f.first = std::min(f.first, flag.first);
            f.last = std::max(f.last, flag.last);
            f.count = std::max(f.count, flag.count);
            return false;
        }
    }
    u.flags.push_back(flag);
    return true;
}

AccountBook::FlagSync AccountBook::reconcileFlags(const std::vector<FlaggedAccount>& fleet,
                                                  const std::map<std::string, std::int64_t>& cleared,
                                                  const FlagKeys& unsent, std::int64_t now) {
    FlagSync out;
    FlagKeys listed;
    for (const FlaggedAccount& account : fleet) {
        for (const AccountFlag& flag : account.flags) {
            listed.emplace(account.user, flag.reason);
            if (unsent.count({account.user, flag.reason}) == 0) {  // else: unflagged here since
                out.added += adoptFlag(account.user, flag, now) ? 1 : 0;
            }
        }
    }
    for (auto& [key, u] : users_) {
        const auto clear = cleared.find(key);
        if (clear == cleared.end()) {
            continue;
        }
        // By when it was raised, not last seen: the refused logins of an account flagged here
        // alone would otherwise keep its flag "seen after the clear" for ever.
        const auto gone = [&, &key = key](const AccountFlag& f) {
            const std::pair<std::string, FlagReason> k{key, f.reason};
            return f.first <= clear->second && listed.count(k) == 0 && unsent.count(k) == 0;
        };
        const auto before = u.flags.size();
        u.flags.erase(std::remove_if(u.flags.begin(), u.flags.end(), gone), u.flags.end());
        if (u.flags.size() == before) {
            continue;
        }
        ++out.cleared;
        dirty_ = true;
        if (u.flags.empty()) {
            forgetHistory(u);  // as the operator's clear did in Redis (its counts and places)
        }
    }
    return out;
}

}  // namespace subproxy
