// See shared_state.h.
#include "io/shared_state.h"

#include <sstream>

#include "io/defence.h"
#include "io/guard.h"
#include "io/guard_state_file.h"
#include "os/log.h"
#include "wire/text_util.h"

namespace subproxy {

SharedState::SharedState(event_base* base, Mailbox::Address control, const Config& config, Guard& guard,
                         Defence& defence, AccountStore& accounts)
    : control_(std::move(control)),
      guard_(guard),
      defence_(defence),
      accounts_(accounts),
      keys_(config.state.keyPrefix),
      accountKeys_(config.state.keyPrefix),
      address_(config.state.address) {
    reconfigure(config);
    main_ = std::make_unique<RedisClient>(base, config.state, "", RedisClient::Hooks{[this] { resync(); }, nullptr});
    events_ = std::make_unique<RedisClient>(
        base, config.state, "subscription",
        RedisClient::Hooks{[this] { resync(); }, [this](const std::string& text) { onEvent(text); }}, keys_.events());
}

SharedState::~SharedState() = default;

void SharedState::start() {
    main_->start();
    events_->start();
}

void SharedState::reconfigure(const Config& config) {
    policy_ = config.guard.policy;
    fanoutWindow_ = config.trap.fanoutWindow;
    migrationTtl_ = static_cast<std::int64_t>(config.migration.historyDays) * 86400;
    migrationMax_ = static_cast<std::size_t>(config.migration.maxEntries);
}

void SharedState::eval(const char* script, std::vector<std::string> keys, std::vector<std::string> args,
                       RedisClient::Callback done, bool replay) {
    RedisClient::Command c;
    c.argv.reserve(3 + keys.size() + args.size());
    c.argv.push_back("EVAL");
    c.argv.push_back(script);
    c.argv.push_back(std::to_string(keys.size()));
    for (auto& k : keys) {
        c.argv.push_back(std::move(k));
    }
    for (auto& a : args) {
        c.argv.push_back(std::move(a));
    }
    c.done = std::move(done);
    c.replay = replay;
    main_->send(std::move(c));
}

// ---------------------------------------------------------------------------------------------
// Updates (any thread: posted to the control loop)

void SharedState::authFailed(const std::string& addressKey, const std::string& user) {
    const std::int64_t now = wallNow();
    post([this, addressKey, user, now] {
        eval(kAuthFailureScript,
             {keys_.addressFailures(addressKey), keys_.userFailures(user), keys_.bans(), keys_.banFailures()},
             {std::to_string(policy_.window), std::to_string(policy_.banThreshold), std::to_string(policy_.banTime),
              std::to_string(now), addressKey, keys_.events(), user.empty() ? "0" : "1"},
             [this, addressKey, user](const RedisClient::Reply& reply) { onFailureReply(addressKey, user, reply); },
             true);
    });
}

void SharedState::onFailureReply(const std::string& addressKey, const std::string& user,
                                 const RedisClient::Reply& reply) {
    if (!reply) {
        return;  // this gateway's own count has decided meanwhile
    }
    const auto f = parseFailureReply(*reply);
    if (!f) {
        if (!reply->isError()) {
            logWarning("state: unexpected reply to an AUTH failure update; this gateway's own count decides");
        }
        return;
    }
    const auto clamp = [](long long n) { return static_cast<unsigned>(std::min<long long>(n, UINT32_MAX)); };
    guard_.adoptFailures(addressKey, clamp(f->addressFailures), user, clamp(f->userFailures));
    if (f->bannedUntil > 0) {
        // The fleet's count crossed the threshold with this failure: the ban holds here at
        // once (the message on the channel brings it to the others).
        guard_.adoptBan(addressKey, f->bannedUntil, clamp(f->addressFailures), true);
    }
}

void SharedState::authSucceeded(const std::string& user) {
    if (user.empty()) {
        return;
    }
    post([this, user] { main_->send({{"DEL", keys_.userFailures(user)}, {}, true}); });
}

void SharedState::banned(const std::string& addressKey, std::int64_t until, unsigned failures) {
    post([this, addressKey, until, failures] {
        if (resyncing_) {
            bannedSinceResync_.insert(addressKey);
        }
        eval(kBanScript, {keys_.bans(), keys_.banFailures()},
             {addressKey, std::to_string(until), std::to_string(failures), keys_.events(), std::to_string(wallNow())},
             {}, true);
    });
}

void SharedState::fanOut(const std::string& client, const std::string& dialled) {
    post([this, client, dialled] {
        eval(kFanOutScript, {keys_.fanOut(client)}, {dialled, std::to_string(fanoutWindow_)},
             [this, client](const RedisClient::Reply& reply) {
                 if (const auto n = reply ? reply->asInteger() : std::nullopt; n && *n > 0) {
                     defence_.adoptFanOut(client, static_cast<int>(std::min<long long>(*n, 1000000)), fanoutWindow_);
                 }
             },
             false);  // one per connection: during an outage they would crowd bans out of the queue
    });
}

void SharedState::greetPassed(const std::string& client, int ttl) {
    if (ttl <= 0) {
        return;
    }
    post([this, client, ttl] {
        SharedEvent e;
        e.kind = SharedEvent::Kind::Greet;
        e.key = client;
        e.ttl = ttl;
        eval(kGreetScript, {keys_.greet(client)}, {std::to_string(ttl), keys_.events(), formatEvent(e)}, {}, true);
    });
}

void SharedState::migration(const MigrationSubmission& s, std::int64_t now) {
    post([this, s, now] {
        const std::string member = SharedStateKeys::migrationMember(s.user, s.address, s.port);
        const std::int64_t day = utcDay(now);
        eval(kMigrationScript,
             {keys_.migrationRecord(member), keys_.migrationIndex(), keys_.migrationDay(day),
              keys_.migrationUsers(day, s.port), keys_.migrationTotals()},
             {member, std::to_string(now), s.mechanism, s.tls, std::to_string(migrationTtl_),
              std::to_string(migrationMax_), std::to_string(s.port), migrationIdentity(s.user, s.address)},
             {}, true);
    });
}

// ---------------------------------------------------------------------------------------------
// From the other gateways (control loop)

void SharedState::onEvent(const std::string& text) {
    if (text.rfind("account-", 0) == 0) {
        onAccountEvent(text);
        return;
    }
    const auto e = parseEvent(text);
    if (!e) {
        logWarning("state: unreadable message on " + keys_.events() + ": \"" + printable(text.substr(0, 100)) + "\"");
        return;
    }
    switch (e->kind) {
    case SharedEvent::Kind::Ban:
        guard_.adoptBan(e->key, e->until, e->failures, false);
        break;
    case SharedEvent::Kind::Lift:
        guard_.adoptLift(e->key);
        break;
    case SharedEvent::Kind::Greet:
        defence_.adoptGreetPass(e->key, static_cast<int>(std::min<std::int64_t>(e->ttl, 86400 * 365)));
        break;
    }
}

void SharedState::resync() {
    // Both connections call this when they come up: the subscriber because it may have missed
    // messages, the main one because the replayed updates may have made bans.  The list goes
    // out on the main connection after everything replayed, so it includes their bans.
    if (!main_->up()) {
        return;
    }
    accountsResync();
    resyncing_ = true;
    bannedSinceResync_.clear();
    eval(kListBansScript, {keys_.bans(), keys_.banFailures()}, {std::to_string(wallNow())},
         [this](const RedisClient::Reply& reply) {
             resyncing_ = false;
             const auto bans = reply ? parseBanList(*reply) : std::nullopt;
             if (bans) {
                 guard_.reconcileBans(*bans, bannedSinceResync_);
             }
             bannedSinceResync_.clear();
         },
         false);
}

// ---------------------------------------------------------------------------------------------
// The operator's list and lift

bool SharedState::handles(const std::string& line) {
    std::istringstream in(line);
    std::string verb, arg, extra, more;
    in >> verb >> arg >> extra >> more;
    if (verb == "accounts") {
        // One account, as AccountStore::command reads it: "clear john doe" is its error, never
        // a clear of john.
        return more.empty() && ((arg == "list" && extra.empty()) || (arg == "clear" && !extra.empty()));
    }
    return (verb == "list" && arg.empty()) || (verb == "lift" && !arg.empty() && extra.empty());
}

void SharedState::command(const std::string& line, std::function<void(std::string)> answer) {
    std::istringstream in(line);
    std::string verb, arg;
    in >> verb >> arg;
    if (verb == "accounts") {
        accountsCommand(line, std::move(answer));
    } else if (verb == "list") {
        list(std::move(answer));
    } else {
        lift(arg, std::move(answer));
    }
}

void SharedState::list(std::function<void(std::string)> answer) {
    eval(kListBansScript, {keys_.bans(), keys_.banFailures()}, {std::to_string(wallNow())},
         [this, answer](const RedisClient::Reply& reply) {
             const auto bans = reply ? parseBanList(*reply) : std::nullopt;
             if (!bans) {
                 // This gateway's mirror: what it knew of the fleet when Redis went away.
                 answer(guard_.command("list") + "# Redis at " + address_ +
                        " did not answer: this gateway's own list\n");
                 return;
             }
             answer(listSharedBans(*bans, wallNow()));
         },
         false);
}

void SharedState::lift(const std::string& arg, std::function<void(std::string)> answer) {
    const std::string key = guard_.liftLocal(arg);  // here at once, whatever Redis does
    const std::string fleetKey = key.empty() ? BanList(policy_).keyFor(arg) : key;
    eval(kLiftScript, {keys_.bans(), keys_.banFailures(), keys_.addressFailures(fleetKey)},
         {fleetKey, keys_.events(), std::to_string(wallNow())},
         [arg, key, fleetKey, answer](const RedisClient::Reply& reply) {
             const auto n = reply ? reply->asInteger() : std::nullopt;
             if (!n) {
                 answer(key.empty() ? "error: " + printable(arg) + " is not banned here, and Redis did not answer; "
                                          "the lift is queued for the other gateways\n"
                                    : "lifted " + key + " here; Redis did not answer: the lift reaches the other "
                                          "gateways when it is back\n");
             } else if (*n == 0 && key.empty()) {
                 answer("error: " + printable(arg) + " is not banned; nothing changed\n");
             } else {
                 answer("lifted " + fleetKey + " on every gateway\n");
             }
         },
         true);
}

void SharedState::addCounts(Metrics& into) const {
    into.stateBackendErrors += main_->errors() + events_->errors();
    into.stateBackendDropped += main_->dropped();
    into.stateBackendQueued = main_->queued();
    into.stateBackendUp = main_->up() && events_->up() ? 1 : 0;
}

}  // namespace subproxy
