// Compromised accounts (issue 12) seen by every gateway (issue 11, item 2), the pure part: the
// Redis keys, the scripts and the readers of their replies, and the messages on the events
// channel.  io/shared_accounts.cpp sends them; io/account_store.cpp adopts what comes back.
//
// Keys (P = state.key_prefix; USER is the account key (userKey), escapeField()-ed):
//   P acct:msg:USER / P acct:rcpt:USER   hash: bucket start -> messages / recipients the MSA
//                                        accepted, on any gateway; EXPIRE window + slot
//   P acct:addr:USER / P acct:dest:USER  sorted set: client address key / dialled address ->
//                                        last seen (unix time); EXPIRE places window
//   P acct:flags                         hash: "USER REASON" -> "FIRST LAST COUNT EVIDENCE";
//                                        no expiry: a flag stays until an operator clears it
//   P acct:cleared                       sorted set: USER -> when an operator last cleared it;
//                                        for gateways that missed the message (kept 30 days)
// Messages on P events: "account-flag USER REASON FIRST LAST COUNT EVIDENCE",
// "account-unflag USER REASON", "account-clear USER", "account-counts USER" (the fleet's count
// reached the limit: read it now rather than at the next login).
//
// Window semantics (the design choice).  The local counters (account_window.h) slide: a
// WindowCount forgets an event between `window` and window + window/12 seconds after it, a
// RecentSet forgets a place `window` seconds after it was last seen.  The fleet keeps the same
// two rules rather than Redis' usual "EXPIRE at the first increment" (a fixed window that
// opens at the first message and forgets everything at once, letting a bot send twice the
// limit across its edge):
//   - counts go into buckets of window/12 seconds aligned on the clock (every gateway puts the
//     same second into the same bucket), and a bucket is dropped by the very rule WindowCount
//     uses (WindowCount::live): an event is forgotten between window and window + slot after
//     it, never earlier.  The buckets come back with every update and are kept beside the
//     local ones (AccountBook), so the fleet's figure decays on its own between updates
//     instead of holding a refused user back for ever;
//   - places are a sorted set scored by last seen, trimmed of what is `window` old at every
//     login and capped like RecentSet (least recently seen first): the same count as the local
//     set, over every gateway's logins.
// Every gateway must use the same accounts windows; the scripts use the caller's clock (the
// gateways run NTP), as the guard's scripts do.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "defence/account_book.h"        // AccountFlag, FlaggedAccount
#include "defence/shared_state_keys.h"   // RedisValue

namespace subproxy {

// Where an update made at `now` goes in a fleet counter of `window` seconds.
struct FleetWindow {
    std::int64_t bucket = 0;   // start of the aligned bucket `now` falls into
    std::int64_t deadUpTo = 0; // buckets starting at or before this hold only forgotten events
    int ttl = 0;               // the hash's expiry: window + slot
};
FleetWindow fleetWindow(std::int64_t now, int window);

// One EVAL: the script, its KEYS and its ARGV.
struct ScriptCall {
    const char* script = nullptr;
    std::vector<std::string> keys;
    std::vector<std::string> args;
};

class FleetAccountKeys {
public:
    explicit FleetAccountKeys(std::string prefix) : prefix_(std::move(prefix)) {}
    std::string messages(std::string_view user) const;
    std::string recipients(std::string_view user) const;
    std::string addresses(std::string_view user) const;
    std::string destinations(std::string_view user) const;
    std::string flags() const { return prefix_ + "acct:flags"; }
    std::string cleared() const { return prefix_ + "acct:cleared"; }
    std::string events() const { return prefix_ + "events"; }
    static std::string flagField(const std::string& user, FlagReason reason);

private:
    std::string prefix_;
};

// Messages or recipients the MSA accepted (0 and 0: a read, at login or on "account-counts").
// The fleet's count reaching `limit` (0: none) is announced to every gateway.
struct FleetCountUpdate {
    std::string user;
    unsigned messages = 0;
    unsigned recipients = 0;
    SendingLimit limit;
    std::int64_t now = 0;
    int window = 0;
};
ScriptCall fleetCountCall(const FleetAccountKeys& keys, const FleetCountUpdate& update);

struct FleetCounts {  // live buckets (start, count), as WindowCount keeps them
    std::vector<std::pair<std::int64_t, unsigned>> messages;
    std::vector<std::pair<std::int64_t, unsigned>> recipients;
};
std::optional<FleetCounts> parseFleetCounts(const RedisValue& reply);

// A login: the client address key and the dialled address into the user's fleet sets.
struct FleetLogin {
    std::string user;
    std::string address;
    std::string destination;
    std::int64_t now = 0;
    int window = 0;
    std::size_t cap = 0;               // as AccountBook::placesCap
    unsigned maxAddresses = 0;         // the members come back only past these (evidence)
    unsigned maxDestinations = 0;
};
ScriptCall fleetLoginCall(const FleetAccountKeys& keys, const FleetLogin& login);

struct FleetPlaces {
    unsigned addresses = 0;
    unsigned destinations = 0;
    std::vector<std::string> addressList;      // most recent first; only past the maximum
    std::vector<std::string> destinationList;
};
std::optional<FleetPlaces> parseFleetPlaces(const RedisValue& reply);

// A flag raised here, or lifted (weak password fixed): stored and announced.
ScriptCall fleetFlagCall(const FleetAccountKeys& keys, const std::string& user, const AccountFlag& flag);
ScriptCall fleetUnflagCall(const FleetAccountKeys& keys, const std::string& user, FlagReason reason);
// The operator's clear at `now`: every flag of the user, its counters and places; announced,
// and remembered (P acct:cleared) for a gateway that misses the message.  The script returns
// the number of flags it removed.  `flaggedHere`: the caller cleared a flag of its own (perhaps
// one Redis never heard of).
ScriptCall fleetClearCall(const FleetAccountKeys& keys, const std::string& user, bool flaggedHere, std::int64_t now);
// How long P acct:cleared remembers a clear: a gateway away longer keeps what it had.
inline constexpr std::int64_t kClearMemory = 30 * 86400;
// HGETALL P acct:flags, read back; nullopt when it is not such a reply.  An entry this version
// cannot read (a reason added by a newer one, a damaged value) is left out and counted rather
// than failing the list: one such entry must not hide every other flag from `-a` and from a
// reconnecting gateway.
struct FleetFlags {
    std::vector<FlaggedAccount> flagged;
    std::size_t unreadable = 0;
};
std::optional<FleetFlags> parseFleetFlags(const RedisValue& reply);
// The line `-a` adds when entries were left out ("" when none were).
std::string unreadableFlagsNote(std::size_t unreadable);
// A (re)connection's read: the flags, and the clears (account -> when) of the last kClearMemory.
struct FleetFlagList {
    std::vector<FlaggedAccount> flagged;
    std::map<std::string, std::int64_t> cleared;
    std::size_t unreadable = 0;  // flags left out (see FleetFlags)
};
ScriptCall fleetFlagListCall(const FleetAccountKeys& keys);
std::optional<FleetFlagList> parseFleetFlagList(const RedisValue& reply);

struct AccountEvent {
    enum class Kind { Flag, Unflag, Clear, Counts };
    Kind kind = Kind::Flag;
    std::string user;
    AccountFlag flag;  // Flag: all of it; Unflag: its reason
};
std::string formatAccountEvent(const AccountEvent& event);
// nullopt when `text` is not an account message (the guard's messages are not).
std::optional<AccountEvent> parseAccountEvent(std::string_view text);

}  // namespace subproxy
