// Compromised accounts (issue 12), the I/O half: the AccountBook (account_book.h) behind one
// mutex, so every event-loop thread's sessions share one count per account; its state file
// (accounts.state_file, written through writeFileAtomically); and the operator's commands on
// guard.control_socket ("accounts list", "accounts clear USER") and from the command line
// (`subproxy -a`, `-A USER`, `-r --flags`).
//
// With state.backend "redis" (issue 11) the store also tells the fleet (SharedState, see
// shared_accounts.cpp) what happens here, and adopts what the other gateways did: their counts
// beside its own, their places into a login's verdict, their flags and clears.  Decisions never
// wait for Redis: they use the last figure heard, and this gateway's own when Redis is down.
// Every call is short and never holds the lock across I/O: the state file is serialised under
// the lock and written outside, and nothing is sent to the fleet under it.
#pragma once
#include <event2/event.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "defence/account_book.h"
#include "defence/fleet_accounts.h"
#include "io/event_handles.h"
#include "ops/config.h"
#include "ops/migration_report.h"  // MigrationFormat

namespace subproxy {

class SharedState;
struct Metrics;

class AccountStore {
public:
    // Loads accounts.state_file (missing: empty; unreadable or corrupt: logged, kept as
    // PATH.bad, empty).  Its timer runs on `base`.
    AccountStore(event_base* base, const Config& config);
    ~AccountStore();  // writes the state file
    AccountStore(const AccountStore&) = delete;
    AccountStore& operator=(const AccountStore&) = delete;

    // SIGHUP: windows, thresholds and overrides (state_file waits for a restart).
    void reconfigure(const Config& config);

    // The account's key from its canonical name (userKey: one count whatever the case).
    std::string key(const std::string& user);

    // From any thread.
    AccountView view(const std::string& key);
    void hold(const std::string& key, SendingKind kind);
    void settle(const std::string& key, SendingKind kind, bool accepted);
    // `logPrefix` ("[ADDRESS]:PORT: ") starts the line of a flag the fleet's count raises.
    AccountBook::Login login(const std::string& key, const std::string& addressKey, const std::string& destination,
                             const std::string& logPrefix = {});
    bool flag(const std::string& key, FlagReason reason, unsigned count, const std::string& evidence);
    bool unflag(const std::string& key, FlagReason reason);

    // "accounts list" | "accounts clear USER"; nullopt for any other line (the guard's).
    std::optional<std::string> command(const std::string& line);
    // "accounts clear USER" here alone (the fleet's clear starts with it).
    struct Cleared {
        std::string key;     // the account, from any spelling of it
        bool cleared = false;
        std::string answer;  // "cleared KEY\n" or "error: ... not flagged ...\n"
    };
    Cleared clearLocal(const std::string& typed);

    // Several gateways (account_store_fleet.cpp).  Set before the workers start and reset after
    // they stopped (as the Guard's), so a plain pointer.
    void setShared(SharedState* shared) { shared_ = shared; }
    // What the fleet says (control loop).
    // The answer to an update of `messages` and `recipients` (0, 0: a read); nullopt: none came.
    void adoptCounts(const std::string& key, const std::optional<FleetCounts>& counts, unsigned messages,
                     unsigned recipients);
    void adoptPlaces(const std::string& key, const FleetPlaces& places, const std::string& logPrefix);
    void adoptFlag(const std::string& key, const AccountFlag& flag);
    void adoptUnflag(const std::string& key, FlagReason reason);
    void adoptClear(const std::string& key);
    // After a (re)connection: the fleet's flags (AccountBook::reconcileFlags).
    void reconcileFlags(const FleetFlagList& fleet);
    // Redis answered (or will never answer) the flag or unflag sent for `key` and `reason`.
    void flagSent(const std::string& key, FlagReason reason);
    // A read of the fleet's counts for an account this gateway knows (nullopt: it does not).
    std::optional<FleetCountUpdate> fleetRead(const std::string& key);
    // Flags the fleet's counts raised here (the sessions count the others).
    void addCounts(Metrics& into) const;

    void flush();

private:
    static void timerCb(evutil_socket_t, short, void* self);
    static std::int64_t now();
    // Under the lock: the fleet update for `messages`/`recipients` accepted (0, 0: a read).
    FleetCountUpdate countUpdate(const std::string& key, unsigned messages, unsigned recipients, std::int64_t t);
    // Under the lock, where a flag is raised or lifted here and is about to go to the fleet.
    void willSend(const std::string& key, FlagReason reason);

    std::mutex mutex_;
    AccountBook book_;
    std::string realm_;
    bool urgent_ = false;           // a new flag: on disk within a second
    std::int64_t lastFlush_ = 0;
    int flushInterval_ = 60;
    std::string stateFile_;         // fixed at start
    bool saveFailing_ = false;
    EventPtr timer_;
    SharedState* shared_ = nullptr;
    std::atomic<std::uint64_t> fleetFlags_[kFlagReasons] = {};
    // Flags and unflags on their way to Redis (posted to the control loop, or sent and not
    // answered yet): a resync's list, read before they arrive, neither undoes nor re-adds them.
    std::map<std::pair<std::string, FlagReason>, unsigned> unsent_;
};

// `subproxy -a` ("list") and `-A USER` ("clear USER"): the running daemon over
// guard.control_socket, else accounts.state_file itself.  Prints the answer; the exit code.
int accountsCommandLine(const std::string& configFile, const std::string& command);
// `subproxy -r --flags [--json|--csv]`: the flagged accounts in accounts.state_file.
int printAccountFlags(const Config& config, MigrationFormat format);

}  // namespace subproxy
