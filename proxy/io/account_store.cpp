#include "io/account_store.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>

#include "io/guard.h"  // askGuardDaemon: the accounts commands share guard.control_socket
#include "io/shared_cli.h"
#include "io/shared_state.h"
#include "ops/account_report.h"
#include "os/atomic_file.h"
#include "os/log.h"
#include "wire/identity.h"
#include "wire/text_util.h"

namespace subproxy {

namespace {

// User names, their client addresses and what they sent: for the operator, not for every
// local user (no password, nor anything derived from one, is ever in it).
constexpr mode_t kStateFileMode = 0600;

// The state file's text; "" with *error when unreadable (a missing file is an empty book).
bool readStateFile(const std::string& path, std::string& text, std::string& error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        if (errno == ENOENT) {
            return true;
        }
        error = std::strerror(errno);
        return false;
    }
    std::ostringstream out;
    out << in.rdbuf();
    text = out.str();
    return true;
}

bool loadBook(const std::string& path, AccountBook& book, std::int64_t now, std::string& error) {
    std::string text;
    if (!readStateFile(path, text, error)) {
        return false;
    }
    return text.empty() || book.load(text, now, &error);
}

// "accounts clear USER": the user as the operator typed it, any spelling of the account.
std::string clearAccount(AccountBook& book, const std::string& key, const std::string& typed) {
    if (!book.clear(key)) {
        return "error: " + printable(typed) + " is not flagged; nothing changed\n";
    }
    return "cleared " + printable(key) + "\n";
}

}  // namespace

AccountStore::AccountStore(event_base* base, const Config& config)
    : book_(config.accounts),
      realm_(defaultRealm(config)),
      flushInterval_(config.accounts.flushInterval),
      stateFile_(config.accounts.stateFile) {
    const std::int64_t t = now();
    lastFlush_ = t;
    std::string error;
    if (!stateFile_.empty() && !loadBook(stateFile_, book_, t, error)) {
        const bool corrupt = ::access(stateFile_.c_str(), R_OK) == 0;
        logWarning("accounts.state_file " + stateFile_ + ": " + error + "; starting with no accounts" +
                   (corrupt ? " (the old file is kept as " + stateFile_ + ".bad)" : std::string()));
        if (corrupt && ::rename(stateFile_.c_str(), (stateFile_ + ".bad").c_str()) != 0) {
            logWarning("accounts.state_file: cannot rename " + stateFile_ + ": " + std::strerror(errno));
        }
        book_ = AccountBook(config.accounts);
    }
    // One second: a new flag is on disk (for `subproxy -r --flags`) within it; the rest waits
    // for flush_interval.  The windows expire by themselves: nothing else to do on a timer.
    timer_.reset(event_new(base, -1, EV_PERSIST, &AccountStore::timerCb, this));
    const timeval second{1, 0};
    event_add(timer_.get(), &second);
}

AccountStore::~AccountStore() {
    timer_.reset();
    flush();
}

std::int64_t AccountStore::now() { return static_cast<std::int64_t>(std::time(nullptr)); }

void AccountStore::reconfigure(const Config& config) {
    std::lock_guard<std::mutex> lock(mutex_);
    book_.setConfig(config.accounts);
    realm_ = defaultRealm(config);
    flushInterval_ = config.accounts.flushInterval;
}

std::string AccountStore::key(const std::string& user) {
    std::lock_guard<std::mutex> lock(mutex_);  // realm_ changes at SIGHUP, on another thread
    return userKey(user, realm_);
}

AccountView AccountStore::view(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    return book_.view(key, now());
}

void AccountStore::hold(const std::string& key, SendingKind kind) {
    std::lock_guard<std::mutex> lock(mutex_);
    book_.hold(key, kind, now());
}

void AccountStore::settle(const std::string& key, SendingKind kind, bool accepted) {
    std::optional<FleetCountUpdate> update;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        const std::int64_t t = now();
        book_.settle(key, kind, accepted, t);
        if (accepted && shared_) {
            const bool message = kind == SendingKind::Message;
            update = countUpdate(key, message ? 1 : 0, message ? 0 : 1, t);
            book_.fleetSent(key, update->messages, update->recipients, t);
        }
    }
    if (update) {
        shared_->accountCounts(*update);
    }
}

AccountBook::Login AccountStore::login(const std::string& key, const std::string& addressKey,
                                       const std::string& destination, const std::string& logPrefix) {
    AccountBook::Login result;
    std::optional<FleetLogin> places;
    std::optional<FleetCountUpdate> read;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        const std::int64_t t = now();
        const AccountsConfig& c = book_.config();
        if (c.places.enabled) {
            result = book_.login(key, addressKey, destination, t);
            urgent_ = urgent_ || !result.raised.empty();
            for (const AccountFlag& f : result.raised) {
                willSend(key, f.reason);
            }
            places = FleetLogin{key, addressKey, destination, t, c.places.window, book_.placesCap(),
                                c.places.maxAddresses, c.places.maxDestinations};
        } else {
            result.view = book_.view(key, t);
        }
        if (limitsApply(c)) {
            read = countUpdate(key, 0, 0, t);  // before the first MAIL: what the others sent
        }
    }
    if (shared_) {
        for (const AccountFlag& f : result.raised) {
            shared_->accountFlagged(key, f);
        }
        if (places) {
            shared_->accountLogin(*places, logPrefix);
        }
        if (read) {
            shared_->accountCounts(*read);
        }
    }
    return result;
}

bool AccountStore::flag(const std::string& key, FlagReason reason, unsigned count, const std::string& evidence) {
    const std::int64_t t = now();
    bool raised;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        raised = book_.flag(key, reason, count, evidence, t);
        urgent_ = urgent_ || raised;
        if (raised) {
            willSend(key, reason);
        }
    }
    if (raised && shared_) {
        shared_->accountFlagged(key, AccountFlag{reason, t, t, count, evidence});
    }
    return raised;
}

bool AccountStore::unflag(const std::string& key, FlagReason reason) {
    bool cleared;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        cleared = book_.unflag(key, reason);
        urgent_ = urgent_ || cleared;
        if (cleared) {
            willSend(key, reason);
        }
    }
    if (cleared && shared_) {
        shared_->accountUnflagged(key, reason);
    }
    return cleared;
}

std::optional<std::string> AccountStore::command(const std::string& line) {
    std::istringstream in(line);
    std::string verb, sub, user, extra;
    in >> verb >> sub >> user >> extra;
    if (verb != "accounts") {
        return std::nullopt;
    }
    if (sub == "list" && user.empty()) {
        std::lock_guard<std::mutex> lock(mutex_);
        return renderAccountFlags(book_.flagged(), MigrationFormat::Text);
    }
    if (sub == "clear" && !user.empty() && extra.empty()) {
        return clearLocal(user).answer;
    }
    return "error: accounts commands are: accounts list | accounts clear USER\n";
}

AccountStore::Cleared AccountStore::clearLocal(const std::string& typed) {
    Cleared out;
    out.key = key(unescapeField(typed).value_or(typed));  // as -a prints it
    {
        std::lock_guard<std::mutex> lock(mutex_);
        out.answer = clearAccount(book_, out.key, typed);
        urgent_ = true;
    }
    out.cleared = out.answer.rfind("cleared", 0) == 0;
    if (out.cleared) {
        logInfo("accounts: flags on " + printable(out.key) + " cleared by the operator");
    }
    return out;
}

void AccountStore::flush() {
    std::string text;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        urgent_ = false;
        lastFlush_ = now();
        if (stateFile_.empty() || !book_.dirty()) {
            return;
        }
        text = book_.serialise(lastFlush_);
        book_.clearDirty();
    }
    std::string error;
    if (!writeFileAtomically(stateFile_, text, kStateFileMode, error)) {
        if (!saveFailing_) {  // once per outage
            logError("accounts: state file not saved: " + error);
        }
        saveFailing_ = true;
        std::lock_guard<std::mutex> lock(mutex_);
        book_.markDirty();  // the next flush tries again
        return;
    }
    if (saveFailing_) {
        logInfo("accounts: state file saved again: " + stateFile_);
    }
    saveFailing_ = false;
}

void AccountStore::timerCb(evutil_socket_t, short, void* self) {
    auto* store = static_cast<AccountStore*>(self);
    bool due;
    {
        std::lock_guard<std::mutex> lock(store->mutex_);
        due = store->urgent_ || now() - store->lastFlush_ >= store->flushInterval_;
    }
    if (due) {
        store->flush();
    }
}

// ---------------------------------------------------------------------------------------------
// Command line (a separate process: blocking I/O is fine here)

namespace {

// `-a` / `-A USER` on accounts.state_file, no daemon running: prints the answer, the exit code.
// With `fleet` (state.backend "redis") a missing file or flag is no error: Redis decides.
int stateFileCommand(const Config& config, const std::string& command, const std::string& key, bool fleet,
                     bool& cleared) {
    const std::string& path = config.accounts.stateFile;
    if (path.empty()) {
        if (!fleet) {
            std::cerr << config.file << ": neither guard.control_socket answers nor is accounts.state_file set\n";
        }
        return fleet ? 0 : 1;
    }
    AccountBook book(config.accounts);
    std::string error;
    const auto t = static_cast<std::int64_t>(std::time(nullptr));
    if (!loadBook(path, book, t, error)) {
        std::cerr << path << ": " << error << "\n";
        return 1;
    }
    if (command == "list") {
        std::cout << renderAccountFlags(book.flagged(), MigrationFormat::Text);
        return 0;
    }
    const std::string typed = command.substr(command.find(' ') + 1);
    const std::string answer = clearAccount(book, key, typed);
    cleared = answer.rfind("cleared", 0) == 0;
    if (!cleared) {
        std::cerr << (fleet ? "" : answer);
        return fleet ? 0 : 1;
    }
    if (!writeFileAtomically(path, book.serialise(t), kStateFileMode, error)) {
        std::cerr << error << "\n";
        return 1;
    }
    if (!fleet) {
        std::cout << answer.substr(0, answer.size() - 1) << " (in " << path << "; no daemon was running)\n";
    }
    return 0;
}

}  // namespace

int accountsCommandLine(const std::string& configFile, const std::string& command) {
    Config config;
    if (!loadConfigOrSay(configFile, config)) {
        return 1;
    }
    std::string answer;
    int connectError = 0;
    if (askGuardDaemon(config.guard, "accounts " + command, answer, connectError)) {
        std::cout << answer;
        return answer.rfind("error:", 0) == 0 ? 1 : 0;
    }
    if (guardDaemonRunning(config)) {
        // It keeps the accounts in memory and rewrites the file: a change here would be undone.
        std::cerr << "subproxy: subproxy is running but cannot be asked"
                  << (config.guard.controlSocket.empty()
                          ? std::string(": set guard.control_socket (it takes effect at the next restart)")
                          : " over " + config.guard.controlSocket + ": " + std::strerror(connectError))
                  << "\n";
        return 1;
    }
    const bool fleet = config.state.backend == StateBackend::Redis;
    if (fleet && command == "list") {
        return sharedAccountsCommandLine(config, command, "", false);  // the fleet's flags
    }
    const std::string typed = command == "list" ? std::string() : command.substr(command.find(' ') + 1);
    const std::string key = userKey(unescapeField(typed).value_or(typed), defaultRealm(config));
    bool cleared = false;
    // The state file (read by this gateway's daemon at start) and, with Redis, every gateway.
    const int status = stateFileCommand(config, command, key, fleet, cleared);
    return fleet && status == 0 ? sharedAccountsCommandLine(config, command, key, cleared) : status;
}

int printAccountFlags(const Config& config, MigrationFormat format) {
    const std::string& path = config.accounts.stateFile;
    if (path.empty()) {
        std::cerr << config.file << ": accounts.state_file is not set: the flags live only in the daemon's memory "
                  << "(subproxy -a asks it)\n";
        return 1;
    }
    AccountBook book(config.accounts);
    std::string error;
    if (!loadBook(path, book, static_cast<std::int64_t>(std::time(nullptr)), error)) {
        std::cerr << path << ": " << error << "\n";
        return 1;
    }
    std::cout << renderAccountFlags(book.flagged(), format);
    return 0;
}

}  // namespace subproxy
