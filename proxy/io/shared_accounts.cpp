// SharedState, the compromised accounts (issue 12) across gateways: the keys, scripts and
// messages are fleet_accounts.h's; what comes back is adopted by the AccountStore, which keeps
// deciding from its own book (see shared_state.h for the threads).
//
// Flags travel like bans: stored in one hash and announced on the events channel, so that an
// account flagged on one gateway is refused or limited on every other within one round trip,
// and read back from the hash at every (re)connection for what a gateway missed meanwhile.
#include <sstream>

#include "io/account_store.h"
#include "io/guard_state_file.h"  // wallNow
#include "io/shared_state.h"
#include "ops/account_report.h"
#include "os/log.h"
#include "wire/identity.h"
#include "wire/text_util.h"

namespace subproxy {

void SharedState::send(const ScriptCall& call, RedisClient::Callback done, bool replay) {
    eval(call.script, call.keys, call.args, std::move(done), replay);
}

void SharedState::accountLogin(const FleetLogin& login, const std::string& logPrefix) {
    post([this, login, logPrefix] {
        send(fleetLoginCall(accountKeys_, login),
             [this, user = login.user, logPrefix](const RedisClient::Reply& reply) {
                 if (const auto places = reply ? parseFleetPlaces(*reply) : std::nullopt) {
                     accounts_.adoptPlaces(user, *places, logPrefix);
                 }
             },
             false);
    });
}

void SharedState::accountCounts(const FleetCountUpdate& update) {
    post([this, update] {
        send(fleetCountCall(accountKeys_, update),
             [this, update](const RedisClient::Reply& reply) {
                 // Answered or not, the update is no longer under way (AccountBook::fleetSent).
                 accounts_.adoptCounts(update.user, reply ? parseFleetCounts(*reply) : std::nullopt, update.messages,
                                       update.recipients);
             },
             false);
    });
}

void SharedState::accountFlagged(const std::string& user, const AccountFlag& flag) {
    post([this, user, flag] {
        send(fleetFlagCall(accountKeys_, user, flag),
             [this, user, reason = flag.reason](const RedisClient::Reply&) { accounts_.flagSent(user, reason); }, true);
    });
}

void SharedState::accountUnflagged(const std::string& user, FlagReason reason) {
    post([this, user, reason] {
        send(fleetUnflagCall(accountKeys_, user, reason),
             [this, user, reason](const RedisClient::Reply&) { accounts_.flagSent(user, reason); }, true);
    });
}

void SharedState::onAccountEvent(const std::string& text) {
    const auto e = parseAccountEvent(text);
    if (!e) {
        logWarning("state: unreadable message on " + keys_.events() + ": \"" + printable(text.substr(0, 100)) + "\"");
        return;
    }
    // This gateway hears its own messages too: adopting what it already has changes nothing.
    switch (e->kind) {
    case AccountEvent::Kind::Flag:
        accounts_.adoptFlag(e->user, e->flag);
        break;
    case AccountEvent::Kind::Unflag:
        accounts_.adoptUnflag(e->user, e->flag.reason);
        break;
    case AccountEvent::Kind::Clear:
        accounts_.adoptClear(e->user);
        break;
    case AccountEvent::Kind::Counts:
        // Some gateway's count reached the limit: read it now, so that a session here does
        // not send past it on the figure of its own last message.
        if (const auto read = accounts_.fleetRead(e->user)) {
            send(fleetCountCall(accountKeys_, *read),
                 [this, user = e->user](const RedisClient::Reply& reply) {
                     accounts_.adoptCounts(user, reply ? parseFleetCounts(*reply) : std::nullopt, 0, 0);
                 },
                 false);
        }
        break;
    }
}

void SharedState::accountsResync() {
    // Flags raised elsewhere while this gateway was away, and flags cleared elsewhere
    // meanwhile: a missed "account-clear" would otherwise leave the account refused here
    // alone, listed nowhere (`-a` reads Redis) and out of reach of a `-A` on another gateway.
    // This runs after the replayed updates went out, so Redis has this gateway's own flags
    // but those still on their way (AccountStore::unsent_), which stay as they are here.
    send(fleetFlagListCall(accountKeys_),
         [this](const RedisClient::Reply& reply) {
             if (const auto list = reply ? parseFleetFlagList(*reply) : std::nullopt) {
                 accounts_.reconcileFlags(*list);
             }
         },
         false);
}

void SharedState::accountsCommand(const std::string& line, std::function<void(std::string)> answer) {
    std::istringstream in(line);
    std::string verb, sub, user;
    in >> verb >> sub >> user;
    if (sub == "clear") {
        clearAccount(user, std::move(answer));
        return;
    }
    main_->send({{"HGETALL", accountKeys_.flags()},
                 [this, answer](const RedisClient::Reply& reply) {
                     const auto flags = reply ? parseFleetFlags(*reply) : std::nullopt;
                     if (!flags) {
                         // This gateway's book: its own flags and those it heard of.
                         answer(accounts_.command("accounts list").value_or("") + "# Redis at " + address_ +
                                " did not answer: this gateway's own list\n");
                         return;
                     }
                     answer(renderAccountFlags(flags->flagged, MigrationFormat::Text) +
                            unreadableFlagsNote(flags->unreadable));
                 },
                 false});
}

void SharedState::clearAccount(const std::string& typed, std::function<void(std::string)> answer) {
    const AccountStore::Cleared here = accounts_.clearLocal(typed);  // at once, whatever Redis does
    send(fleetClearCall(accountKeys_, here.key, here.cleared, wallNow()),
         [typed, here, answer](const RedisClient::Reply& reply) {
             const auto n = reply ? reply->asInteger() : std::nullopt;
             const std::string key = printable(here.key);
             if (!n) {
                 answer(here.cleared ? "cleared " + key + " here; Redis did not answer: the clear reaches the other "
                                                          "gateways when it is back\n"
                                     : "error: " + printable(typed) + " is not flagged here, and Redis did not "
                                                                      "answer; the clear is queued for the other gateways\n");
             } else if (*n == 0 && !here.cleared) {
                 answer("error: " + printable(typed) + " is not flagged; nothing changed\n");
             } else {
                 answer("cleared " + key + " on every gateway\n");
             }
         },
         true);
}

}  // namespace subproxy
