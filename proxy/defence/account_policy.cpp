#include "defence/account_policy.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "wire/text_util.h"

namespace subproxy {

namespace {

constexpr const char* kReasonNames[kFlagReasons] = {"sending_limit", "many_addresses", "many_destinations",
                                                     "weak_password"};

unsigned tighter(unsigned a, unsigned b) {
    if (a == 0) {
        return b;
    }
    return b == 0 ? a : std::min(a, b);
}

bool parseCount(const std::string& field, unsigned fallback, unsigned& out) {
    if (field == "-") {
        out = fallback;
        return true;
    }
    if (field.empty() || field.size() > 9 || field.find_first_not_of("0123456789") != std::string::npos) {
        return false;
    }
    out = static_cast<unsigned>(std::strtoul(field.c_str(), nullptr, 10));
    return true;
}

}  // namespace

const char* flagReasonName(FlagReason reason) { return kReasonNames[static_cast<int>(reason)]; }

std::optional<FlagReason> parseFlagReason(std::string_view name) {
    for (int i = 0; i < kFlagReasons; ++i) {
        if (name == kReasonNames[i]) {
            return static_cast<FlagReason>(i);
        }
    }
    return std::nullopt;
}

std::string flaggedLogLine(const std::string& user, FlagReason reason, const std::string& evidence) {
    return std::string("accounts: flagged ") + flagReasonName(reason) + ": " + evidence +
           ", sasl_username=" + printable(user);
}

bool limitsApply(const AccountsConfig& a) {
    return a.limits.enabled || (a.places.enabled && a.places.action == PlacesAction::Limit);
}

SendingLimit effectiveLimit(const AccountsConfig& config, const AccountView& view) {
    SendingLimit limit;
    if (config.limits.enabled) {
        limit = view.limit;
    }
    if (config.places.enabled && config.places.action == PlacesAction::Limit && view.placesFlagged) {
        limit.messages = tighter(limit.messages, config.places.limited.messages);
        limit.recipients = tighter(limit.recipients, config.places.limited.recipients);
    }
    return limit;
}

std::optional<SendingRefusal> checkSending(const AccountsConfig& config, const AccountView& view, SendingKind kind) {
    const SendingLimit limit = effectiveLimit(config, view);
    const unsigned max = kind == SendingKind::Message ? limit.messages : limit.recipients;
    const unsigned count = kind == SendingKind::Message ? view.messages : view.recipients;
    if (max == 0 || count < max) {
        return std::nullopt;
    }
    return SendingRefusal{kind, count, max};
}

std::string humanDuration(int seconds) {
    const auto unit = [](int n, const char* one) { return std::to_string(n) + " " + one + (n == 1 ? "" : "s"); };
    if (seconds % 86400 == 0) {
        return unit(seconds / 86400, "day");
    }
    if (seconds % 3600 == 0) {
        return unit(seconds / 3600, "hour");
    }
    if (seconds % 60 == 0) {
        return unit(seconds / 60, "minute");
    }
    return unit(seconds, "second");
}

std::string sendingRefusalText(const AccountsConfig& config, const SendingRefusal& refusal) {
    const char* what = refusal.kind == SendingKind::Message ? "messages" : "recipients";
    // Said so that the customer knows it is not a fault of the mail program and that it
    // passes: a mail program retries a 451 later by itself.
    return "Sending limit reached: this account may send " + std::to_string(refusal.limit) + " " + what +
           " per " + humanDuration(config.limits.window) +
           "; the rest waits and is accepted later. If you did not send them, change your password. " +
           config.contact;
}

std::string sendingRefusalFacts(const AccountsConfig& config, const SendingRefusal& refusal) {
    return std::string(refusal.kind == SendingKind::Message ? "messages=" : "recipients=") +
           std::to_string(refusal.count) + " limit=" + std::to_string(refusal.limit) +
           " window=" + std::to_string(config.limits.window) + "s";
}

bool refusesLogin(const AccountsConfig& config, const AccountView& view) {
    return config.places.enabled && config.places.action == PlacesAction::Refuse && view.placesFlagged;
}

std::string loginRefusalText(const AccountsConfig& config) {
    return "Account suspended: it was used from more places than usual and may be known to others. "
           "Change your password. " + config.contact;
}

PasswordVerdict judgePassword(const PasswordQuality& quality, std::string_view password, std::string_view user,
                              int minScore) {
    using P = PasswordQuality::Problem;
    switch (quality.problem) {
    case P::Dictionary:
        return {true, "dictionary word"};
    case P::UserName:
        return {true, "contains the user name"};
    case P::TooSimple:
        return {true, "too simple"};
    case P::None:
        break;
    }
    // libpwquality's own user check reverses and folds case but needs the exact name; a name
    // with a realm ("alice@example.com") is checked by its local part here.
    const std::string local = toLower(user.substr(0, user.find('@')));
    if (local.size() >= 3 && toLower(password).find(local) != std::string::npos) {
        return {true, "contains the user name"};
    }
    if (quality.score < minScore) {
        return {true, "score " + std::to_string(quality.score) + " below min_score " + std::to_string(minScore)};
    }
    return {false, {}};
}

std::optional<std::map<std::string, SendingLimit>> parseLimitOverrides(std::string_view text,
                                                                      const SendingLimit& defaults,
                                                                      std::string* error) {
    std::map<std::string, SendingLimit> out;
    std::istringstream in{std::string(text)};
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        const auto hash = line.find('#');
        std::istringstream fields(line.substr(0, hash));
        std::string user, messages, recipients, extra;
        if (!(fields >> user)) {
            continue;
        }
        fields >> messages >> recipients >> extra;
        SendingLimit limit;
        if (recipients.empty() || !extra.empty() || !parseCount(messages, defaults.messages, limit.messages) ||
            !parseCount(recipients, defaults.recipients, limit.recipients)) {
            *error = "line " + std::to_string(n) + ": expected \"user messages recipients\" (numbers, 0 = no limit, "
                     "- = the default)";
            return std::nullopt;
        }
        out[toLower(user)] = limit;
    }
    return out;
}

}  // namespace subproxy
