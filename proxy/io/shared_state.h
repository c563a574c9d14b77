// The state several gateways share (issue 11; DESIGN.md "State: one machine, then a fleet"),
// with state.backend = "redis".  This gateway's own state (the Guard's ban list and counts, the
// Defence's trap caches, the migration report) stays the source of every decision a session
// waits for; this class spreads it through Redis and brings the other gateways' part back in:
//
//   AUTH failures   per address key and per user: one script INCRs both (EXPIRE window) and bans
//                   the address when the fleet's count reaches guard.ban_threshold; the counts
//                   it returns raise this gateway's (its delays and threshold count every gateway)
//   bans            a sorted set (end time as score) plus a message on the events channel;
//                   every gateway subscribes and mirrors them within milliseconds, and reads
//                   the whole set again at each (re)connection (messages missed meanwhile)
//   lifts           from any gateway: removed from the set, published, lifted everywhere
//   fan-out         a HyperLogLog per client; the fleet's count raises the trap's own
//   greet passes    SET EX plus a message: a customer pays the pregreet wait once per fleet
//   migration       per (user, address, dialled port) a hash, an index and per-day figures,
//                   which `subproxy -r` reads back (shared_report.cpp)
//   accounts        the compromised-account counters and flags (issue 12): messages and
//                   recipients per user, the places of its logins, its flags, and the
//                   operator's list and clear (shared_accounts.cpp; fleet_accounts.h)
//
// Pub/sub rather than polling: a ban reaches every gateway in one round trip instead of up to a
// polling period, and an idle fleet costs Redis nothing; what a subscriber misses while it is
// disconnected it reads back from the sorted set when it reconnects.
//
// Threads: the public "any thread" calls post to the control loop (Mailbox) and return at once;
// everything else runs on the control loop, where both Redis connections live.  Nothing here is
// ever waited for by a session: when Redis is slow or down, updates wait in a bounded replay
// queue (redis_client.h) and the sessions go on with local state.
#pragma once
#include <event2/event.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "defence/fleet_accounts.h"
#include "defence/shared_state_keys.h"
#include "io/mailbox.h"
#include "io/redis_client.h"
#include "ops/config.h"
#include "ops/metrics.h"
#include "ops/migration_report.h"

namespace subproxy {

class Guard;
class Defence;
class AccountStore;

class SharedState {
public:
    SharedState(event_base* base, Mailbox::Address control, const Config& config, Guard& guard, Defence& defence,
                AccountStore& accounts);
    ~SharedState();
    SharedState(const SharedState&) = delete;
    SharedState& operator=(const SharedState&) = delete;

    void start();                              // connects (control loop)
    void reconfigure(const Config& config);    // SIGHUP: thresholds, windows, TTLs (control loop)

    // Any thread; never blocks.  `addressKey` is BanList::addressKey (IPv6 grouped).
    void authFailed(const std::string& addressKey, const std::string& user);
    void authSucceeded(const std::string& user);
    void banned(const std::string& addressKey, std::int64_t until, unsigned failures);
    void fanOut(const std::string& client, const std::string& dialled);
    void greetPassed(const std::string& client, int ttl);
    void migration(const MigrationSubmission& submission, std::int64_t now);

    // Compromised accounts (shared_accounts.cpp).  Any thread; never blocks.  What comes back
    // goes to the AccountStore on the control loop; no answer (Redis down or slow) leaves this
    // gateway with its own counts.  Counts and places are not replayed after an outage (one
    // per login or message, they would crowd the bans out of the queue, and a late figure
    // decides nothing); flags, unflags and clears are.  `logPrefix` starts the log line of a
    // flag the fleet's count raises ("[ADDRESS]:PORT: ", the session's).
    void accountLogin(const FleetLogin& login, const std::string& logPrefix);
    void accountCounts(const FleetCountUpdate& update);
    void accountFlagged(const std::string& user, const AccountFlag& flag);
    void accountUnflagged(const std::string& user, FlagReason reason);

    // The control socket's "list", "lift ADDRESS", "accounts list" and "accounts clear USER"
    // (control loop): the fleet's bans and flagged accounts, a lift or a clear on every
    // gateway.  Falls back to this gateway's list when Redis does not answer.
    static bool handles(const std::string& line);
    void command(const std::string& line, std::function<void(std::string)> answer);

    // subproxy_state_backend_* (control loop: the scrape runs there).
    void addCounts(Metrics& into) const;

private:
    void post(std::function<void()> job) { control_.post(std::move(job)); }
    void eval(const char* script, std::vector<std::string> keys, std::vector<std::string> args,
              RedisClient::Callback done, bool replay);
    void onFailureReply(const std::string& addressKey, const std::string& user, const RedisClient::Reply& reply);
    void onEvent(const std::string& text);
    void resync();  // the fleet's bans again, after a (re)connection
    void list(std::function<void(std::string)> answer);
    void lift(const std::string& arg, std::function<void(std::string)> answer);
    void send(const ScriptCall& call, RedisClient::Callback done, bool replay);
    void onAccountEvent(const std::string& text);
    void accountsResync();
    void accountsCommand(const std::string& line, std::function<void(std::string)> answer);
    void clearAccount(const std::string& typed, std::function<void(std::string)> answer);

    Mailbox::Address control_;
    Guard& guard_;
    Defence& defence_;
    AccountStore& accounts_;
    SharedStateKeys keys_;
    FleetAccountKeys accountKeys_;
    std::string address_;  // state.address, for log lines and answers
    // Control loop only (copied from the configuration at start and reload).
    GuardPolicy policy_;
    int fanoutWindow_ = 0;
    std::int64_t migrationTtl_ = 0;
    std::size_t migrationMax_ = 0;
    // Bans made here since the last resync asked for the list: not lifted by its answer.
    std::set<std::string> bannedSinceResync_;
    bool resyncing_ = false;
    std::unique_ptr<RedisClient> main_;
    std::unique_ptr<RedisClient> events_;  // the subscriber
};

}  // namespace subproxy
