// Compromised accounts (issue 12), the decisions: the `accounts` group's settings and the pure
// verdicts the engine and the glue ask for.  Nothing here counts or remembers: the counts come
// from the AccountBook (account_book.h) through the glue (io/account_store.h), and these
// functions only compare them with the policy.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace subproxy {

// Messages and recipients per window; 0 is "no limit".
struct SendingLimit {
    unsigned messages = 0;
    unsigned recipients = 0;
};

// What happens to an account used from more places than places.max_addresses/max_destinations.
enum class PlacesAction { Flag, Limit, Refuse };

struct AccountsConfig {
    std::string stateFile;       // empty: remembered in memory only
    int flushInterval = 60;      // seconds between state file writes (only when changed)
    int maxUsers = 100000;       // accounts remembered; idle ones without a flag go first
    // Whom a refused customer should call: ends the 451 and 454/535 texts.
    std::string contact = "Contact your e-mail provider if you did not send these messages.";

    struct Limits {
        bool enabled = false;    // the group accounts.limits is present (and not enabled = false)
        int window = 3600;       // seconds
        SendingLimit perUser{100, 500};
        std::string overridesFile;  // "user messages recipients" lines; re-read at SIGHUP
        std::map<std::string, SendingLimit> overrides;  // read from it, by lower-case user
    } limits;

    struct Places {
        bool enabled = false;
        int window = 86400;
        unsigned maxAddresses = 5;     // distinct client addresses (IPv6 per /64) per window
        unsigned maxDestinations = 5;  // distinct dialled addresses per window
        PlacesAction action = PlacesAction::Flag;
        SendingLimit limited{10, 20};  // action "limit": the account's limits while flagged
        int refuseCode = 454;          // action "refuse": 454 (try later) or 535 at AUTH
    } places;

    struct Passwords {
        bool enabled = false;
        int minScore = 50;             // libpwquality's 0-100 score; below it is weak
        std::string notice;            // empty: none; else a 235- line before the 235
    } passwords;

    bool any() const { return limits.enabled || places.enabled || passwords.enabled; }
};

// Why an account is flagged.  The names are the report's and the metrics' label values.
enum class FlagReason { SendingLimit, ManyAddresses, ManyDestinations, WeakPassword };
inline constexpr int kFlagReasons = 4;
const char* flagReasonName(FlagReason reason);  // "sending_limit", ...
std::optional<FlagReason> parseFlagReason(std::string_view name);

// Log lines for fail2ban and grep: "accounts: flagged REASON: EVIDENCE, sasl_username=USER".
std::string flaggedLogLine(const std::string& user, FlagReason reason, const std::string& evidence);

// The sending limits are checked: accounts.limits is on, or places "limit" may lower the limits
// of a flagged account (even with accounts.limits off).
bool limitsApply(const AccountsConfig& config);

// What the glue knows of one account when the engine asks (account_book.h fills it).
struct AccountView {
    unsigned messages = 0;     // accepted by the MSA in the window, plus those under way
    unsigned recipients = 0;
    SendingLimit limit;        // the per-user override, or the default
    bool placesFlagged = false;  // flagged many_addresses or many_destinations
    bool weakPassword = false;
};

enum class SendingKind { Message, Recipient };

// The limit in force: limits.* (or the user's override) when enabled, lowered to
// places.limited while the account is flagged for its places and the action is "limit".
SendingLimit effectiveLimit(const AccountsConfig& config, const AccountView& view);

// One more message (at MAIL) or recipient (at RCPT): refused when the count already reached
// the limit.  Empty when allowed, else the refusal's facts.
struct SendingRefusal {
    SendingKind kind;
    unsigned count;
    unsigned limit;
};
std::optional<SendingRefusal> checkSending(const AccountsConfig& config, const AccountView& view, SendingKind kind);

// The 451 text after "4.7.1 " (what happened, what to do, whom to contact), under 500 bytes.
std::string sendingRefusalText(const AccountsConfig& config, const SendingRefusal& refusal);
// The log line's facts: "messages=100 limit=100 window=3600s".
std::string sendingRefusalFacts(const AccountsConfig& config, const SendingRefusal& refusal);

// AUTH succeeded, but the account is flagged for its places and the action is "refuse".
bool refusesLogin(const AccountsConfig& config, const AccountView& view);
std::string loginRefusalText(const AccountsConfig& config);  // after "4.7.0 " / "5.7.8 "

// "3600s" -> "1 hour", "90s" -> "90 seconds": for the customer's reply.
std::string humanDuration(int seconds);

// The password check's input, from libpwquality (io/password_quality.cpp maps its codes).
struct PasswordQuality {
    enum class Problem { None, Dictionary, UserName, TooSimple };
    Problem problem = Problem::None;
    int score = 0;  // 0-100 when problem is None
};
struct PasswordVerdict {
    bool weak = false;
    std::string why;  // for the log and the report; never holds the password
};
// Weak when libpwquality found a problem, the score is below min_score, or the password
// equals or contains the user name's local part (3 characters or more, any case).
PasswordVerdict judgePassword(const PasswordQuality& quality, std::string_view password, std::string_view user,
                              int minScore);

// accounts.limits.overrides_file: "user messages recipients" per line, '#' comments, blank
// lines; "-" for the default.  nullopt with *error "line N: why" on a bad line.
std::optional<std::map<std::string, SendingLimit>> parseLimitOverrides(std::string_view text,
                                                                      const SendingLimit& defaults,
                                                                      std::string* error);

}  // namespace subproxy
