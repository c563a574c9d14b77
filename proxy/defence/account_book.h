// Compromised accounts (issue 12), the memory: per account, the messages and recipients the MSA
// accepted in the limits window, those under way, the client and dialled addresses of its
// logins in the places window, and its flags with their evidence.  Pure and single-threaded:
// io/account_store.h puts it behind a mutex, reads the overrides file and writes the state
// file.  Accounts are keyed by userKey() (identity.h): one count whatever the spelling.
//
// Under way ("held"): a MAIL or RCPT sent to the MSA whose reply has not come back counts
// against the limit at once, so pipelined commands and parallel sessions of one account cannot
// push past it; it becomes accepted on the MSA's 250 (the 250 after DATA for a message) and is
// dropped otherwise.  Held counts are not saved: they belong to live sessions.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "defence/account_policy.h"
#include "defence/account_window.h"

namespace subproxy {

struct FleetCounts;  // fleet_accounts.h
struct FleetPlaces;

struct AccountFlag {
    FlagReason reason = FlagReason::SendingLimit;
    std::int64_t first = 0;  // flagged at
    std::int64_t last = 0;   // seen again at (another refusal, login or weak check)
    unsigned count = 0;      // the figure that crossed the line (messages, addresses...)
    std::string evidence;    // "messages=100 limit=100 window=3600s", the addresses...
};

struct FlaggedAccount {
    std::string user;
    std::vector<AccountFlag> flags;
};

class AccountBook {
public:
    explicit AccountBook(AccountsConfig config = {});

    // SIGHUP: new windows, thresholds and per-user overrides.
    void setConfig(const AccountsConfig& config) { config_ = config; }

    AccountView view(const std::string& user, std::int64_t now);
    void hold(const std::string& user, SendingKind kind, std::int64_t now);
    // The MSA answered what was held: `accepted` counts it in the window, else it is dropped.
    void settle(const std::string& user, SendingKind kind, bool accepted, std::int64_t now);

    struct Login {
        AccountView view;                 // after this login (flags included)
        std::vector<AccountFlag> raised;  // flags this login raised
        unsigned addresses = 0;           // distinct in the places window, this one included
        unsigned destinations = 0;
    };
    // A successful AUTH from `addressKey` (clientKey(): IPv6 per /64) to the dialled `destination`.
    Login login(const std::string& user, const std::string& addressKey, const std::string& destination,
                std::int64_t now);

    // Raises the flag (true) or refreshes the one already there (false).
    bool flag(const std::string& user, FlagReason reason, unsigned count, const std::string& evidence,
              std::int64_t now);
    bool unflag(const std::string& user, FlagReason reason);
    // The operator: flags, counts and places forgotten (what is under way stays held).  False
    // when the account has no flag.
    bool clear(const std::string& user);

    std::vector<FlaggedAccount> flagged() const;  // by user name

    // Several gateways (fleet_accounts.h; account_book_fleet.cpp).  What the fleet adds to the
    // view is kept beside the local counts, never instead of them: the view counts whichever is
    // higher, so a Redis that forgot (or never heard of) this gateway's messages lowers nothing.
    const AccountsConfig& config() const { return config_; }
    bool knows(const std::string& key) const { return users_.count(key) != 0; }
    std::size_t placesCap() const;
    // Accepted here and sent to the fleet: counted on top of the fleet's last figure until the
    // answer to that update (which includes them) comes back, so that the next MAIL, sent
    // before Redis answered, does not see a figure without the message just accepted.
    void fleetSent(const std::string& key, unsigned messages, unsigned recipients, std::int64_t now);
    // The answer to an update of `messages` and `recipients` (0 and 0: to a read): the fleet's
    // live buckets, replacing those known before; `counts` null when Redis did not answer.
    void adoptCounts(const std::string& key, const FleetCounts* counts, unsigned messages, unsigned recipients,
                     std::int64_t now);
    // The fleet's places after a login here: past the maximum (and past this gateway's own
    // count, which login() already judged), the account is flagged with the fleet's evidence.
    std::vector<AccountFlag> adoptPlaces(const std::string& key, const FleetPlaces& places, std::int64_t now);
    // A flag another gateway raised (or one Redis lists): true when it is new here.
    bool adoptFlag(const std::string& key, const AccountFlag& flag, std::int64_t now);
    // After a (re)connection, the fleet's flags as Redis lists them are adopted, and a flag
    // here that Redis does not list goes when the operator cleared the account (`cleared`:
    // account -> when) after it was raised, while this gateway was not listening.  A flag Redis
    // never heard of (raised before the gateway joined the fleet, or lost from a full replay
    // queue) stays.  `unsent`: (account, reason) whose flag or unflag this gateway sent and
    // Redis has not answered yet, left as they are here.  An account left with no flag forgets
    // its history as clear() does.
    using FlagKeys = std::set<std::pair<std::string, FlagReason>>;
    struct FlagSync {
        std::size_t added = 0;
        std::size_t cleared = 0;  // accounts that lost a flag
    };
    FlagSync reconcileFlags(const std::vector<FlaggedAccount>& fleet, const std::map<std::string, std::int64_t>& cleared,
                            const FlagKeys& unsent, std::int64_t now);
    std::size_t accounts() const { return users_.size(); }

    // Forgets what left its window, and accounts with nothing left (no flag, nothing held).
    void prune(std::int64_t now);
    bool dirty() const { return dirty_; }
    void clearDirty() { dirty_ = false; }
    void markDirty() { dirty_ = true; }

    // State file, "subproxy-accounts 1"; see serialise() in the .cpp for the lines.
    std::string serialise(std::int64_t now);
    // Replaces the accounts with the file's; false with *error "line N: why".
    bool load(const std::string& text, std::int64_t now, std::string* error);

private:
    struct User {
        WindowCount messages;
        WindowCount recipients;
        unsigned heldMessages = 0;
        unsigned heldRecipients = 0;
        RecentSet addresses;
        RecentSet destinations;
        WindowCount fleetMessages;    // the fleet's buckets, as last heard (not saved)
        WindowCount fleetRecipients;
        unsigned fleetSentMessages = 0;    // sent to the fleet, its answer not yet back
        unsigned fleetSentRecipients = 0;
        std::vector<AccountFlag> flags;
        std::int64_t lastSeen = 0;
    };
    User& user(const std::string& key, std::int64_t now);
    AccountView viewOf(const std::string& key, const User& u, std::int64_t now) const;
    void makeRoom(std::int64_t now);
    static void forgetHistory(User& u);  // clear()'s: all but what is under way
    static bool idle(const User& u) {
        return u.flags.empty() && u.heldMessages == 0 && u.heldRecipients == 0 && u.messages.empty() &&
               u.recipients.empty() && u.addresses.empty() && u.destinations.empty() &&
               u.fleetMessages.empty() && u.fleetRecipients.empty() && u.fleetSentMessages == 0 &&
               u.fleetSentRecipients == 0;
    }

    AccountsConfig config_;
    std::unordered_map<std::string, User> users_;
    bool dirty_ = false;
};

}  // namespace subproxy
