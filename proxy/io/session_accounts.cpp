// Session, the compromised-accounts half (issue 12): the host side of the engine's account
// calls.  The counters and flags are the server's AccountStore (shared by every session and
// thread); this file turns the engine's names into account keys, adds what only the session
// knows (the client address, the dialled address), logs the flags and counts them, and runs
// the password check on the worker pool.
#include <memory>

#include "io/password_quality.h"
#include "io/server.h"
#include "io/session.h"
#include "os/log.h"
#include "wire/cidr.h"
#include "wire/text_util.h"

namespace subproxy {

AccountView Session::accountView(const std::string& user) {
    AccountStore& store = server_.accounts();
    return store.view(store.key(user));
}

void Session::accountHold(const std::string& user, SendingKind kind) {
    AccountStore& store = server_.accounts();
    store.hold(store.key(user), kind);
}

void Session::accountSettle(const std::string& user, SendingKind kind, bool accepted) {
    AccountStore& store = server_.accounts();
    store.settle(store.key(user), kind, accepted);
}

AccountView Session::accountLogin(const std::string& user) {
    AccountStore& store = server_.accounts();
    // One customer's IPv6 network is one place, however many addresses it uses.
    const auto ip = parseIpAddress(endpoint_.address);
    const std::string place = ip ? clientKey(*ip, 64) : endpoint_.address;
    const AccountBook::Login login = store.login(store.key(user), place, endpoint_.destAddress, prefix_);
    for (const AccountFlag& flag : login.raised) {
        logWarning(flaggedLogLine(user, flag.reason, flag.evidence));
        ++server_.metrics().accounts.flags[static_cast<int>(flag.reason)];
    }
    return login.view;
}

void Session::accountLimited(const std::string& user, const SendingRefusal& refusal) {
    AccountStore& store = server_.accounts();
    const std::string facts = sendingRefusalFacts(runtime_->config.accounts, refusal);
    if (store.flag(store.key(user), FlagReason::SendingLimit, refusal.count, facts)) {
        logWarning(flaggedLogLine(user, FlagReason::SendingLimit, facts));
        ++server_.metrics().accounts.flags[static_cast<int>(FlagReason::SendingLimit)];
    }
}

void Session::checkPassword(const std::string& user, const std::string& password) {
    // The one copy that leaves the engine: wiped on the worker right after the check, and by
    // its destructor whatever happens to the job.  Only the verdict comes back.
    auto secret = std::make_shared<SecretCopy>(password);
    auto verdict = std::make_shared<std::optional<PasswordVerdict>>();
    const int minScore = runtime_->config.accounts.passwords.minScore;
    Server& server = server_;
    const std::uint64_t id = id_;
    const std::string prefix = prefix_;
    server_.authWorkers().submit(
        [secret, verdict, user, minScore] {
            if (const auto quality = measurePassword(secret->value(), user)) {
                *verdict = judgePassword(*quality, secret->value(), user, minScore);
            }
            secret->wipe();
        },
        [&server, id, verdict, user, prefix] {
            // Recorded even when the session has gone meanwhile.
            AccountStore& store = server.accounts();
            const std::string key = store.key(user);
            AccountCounts& counts = server.metrics().accounts;
            if (!*verdict) {
                ++counts.passwordChecks[2];
                subproxy::logWarning(prefix + "accounts: the password check could not run (libpwquality or cracklib's "
                                    "dictionary unavailable), sasl_username=" + printable(user));
            } else if ((*verdict)->weak) {
                ++counts.passwordChecks[0];
                if (store.flag(key, FlagReason::WeakPassword, 0, (*verdict)->why)) {
                    ++counts.flags[static_cast<int>(FlagReason::WeakPassword)];
                }
                subproxy::logWarning(prefix + flaggedLogLine(user, FlagReason::WeakPassword, (*verdict)->why));
            } else {
                ++counts.passwordChecks[1];
                if (store.unflag(key, FlagReason::WeakPassword)) {
                    subproxy::logInfo(prefix + "accounts: weak_password flag cleared: the password now passes the check, "
                                     "sasl_username=" + printable(user));
                }
            }
            if (Session* session = server.findSession(id)) {
                session->protocol_.onPasswordChecked(*verdict && (*verdict)->weak);
                session->updateReading();
            }
        },
        AuthWorkers::Clock::time_point::max());  // never dropped: the 235 may wait for it
}

}  // namespace subproxy
