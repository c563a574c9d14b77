// Compromised accounts (issue 12), the I/O half: the AccountBook (account_book.h) behind one
// mutex, so every event-loop thread's sessions share one count per account; its state file
// (accounts.state_file, written through writeFileAtomically); and the operator's commands on
// guard.control_socket ("accounts list", "accounts clear USER") and from the command line
// (`subproxy -a`, `-A USER`, `-r --flags`).
//
// Kept behind this small interface of its own so that a shared back end (issue 11: Redis) can
// take the counters over later without the sessions noticing.  Every call is short and never
// holds the lock across I/O: the state file is serialised under the lock and written outside.
#pragma once
#include <event2/event.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "defence/account_book.h"
#include "io/event_handles.h"
#include "ops/config.h"
#include "ops/migration_report.h"  // MigrationFormat

namespace subproxy {

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
    AccountBook::Login login(const std::string& key, const std::string& addressKey, const std::string& destination);
    bool flag(const std::string& key, FlagReason reason, unsigned count, const std::string& evidence);
    bool unflag(const std::string& key, FlagReason reason);

    // "accounts list" | "accounts clear USER"; nullopt for any other line (the guard's).
    std::optional<std::string> command(const std::string& line);

    void flush();

private:
    static void timerCb(evutil_socket_t, short, void* self);
    static std::int64_t now();

    std::mutex mutex_;
    AccountBook book_;
    std::string realm_;
    bool urgent_ = false;           // a new flag: on disk within a second
    std::int64_t lastFlush_ = 0;
    int flushInterval_ = 60;
    std::string stateFile_;         // fixed at start
    bool saveFailing_ = false;
    EventPtr timer_;
};

// `subproxy -a` ("list") and `-A USER` ("clear USER"): the running daemon over
// guard.control_socket, else accounts.state_file itself.  Prints the answer; the exit code.
int accountsCommandLine(const std::string& configFile, const std::string& command);
// `subproxy -r --flags [--json|--csv]`: the flagged accounts in accounts.state_file.
int printAccountFlags(const Config& config, MigrationFormat format);

}  // namespace subproxy
