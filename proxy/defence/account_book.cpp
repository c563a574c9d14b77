#include "defence/account_book.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "ops/migration_report.h"  // escapeField, unescapeField: the state files' one escaping

namespace subproxy {

namespace {

constexpr const char* kHeader = "subproxy-accounts 1";

bool hasFlag(const std::vector<AccountFlag>& flags, FlagReason reason) {
    return std::any_of(flags.begin(), flags.end(), [&](const AccountFlag& f) { return f.reason == reason; });
}

bool number(const std::string& s, std::int64_t& out) {
    if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos) {
        return false;
    }
    out = std::strtoll(s.c_str(), nullptr, 10);
    return true;
}

}  // namespace

AccountBook::AccountBook(AccountsConfig config) : config_(std::move(config)) {}

AccountBook::User& AccountBook::user(const std::string& key, std::int64_t now) {
    auto it = users_.find(key);
    if (it == users_.end()) {
        makeRoom(now);
        it = users_.emplace(key, User{}).first;
    }
    it->second.lastSeen = std::max(it->second.lastSeen, now);
    return it->second;
}

// Bounded by accounts.max_users: the idle go first, then the least recently seen without a
// flag or anything under way.  Flagged accounts stay (the operator has not seen them yet).
void AccountBook::makeRoom(std::int64_t now) {
    const auto max = static_cast<std::size_t>(std::max(1, config_.maxUsers));
    if (users_.size() < max) {
        return;
    }
    prune(now);
    while (users_.size() >= max) {
        auto victim = users_.end();
        for (auto it = users_.begin(); it != users_.end(); ++it) {
            const User& u = it->second;
            if (u.flags.empty() && u.heldMessages == 0 && u.heldRecipients == 0 &&
                (victim == users_.end() || u.lastSeen < victim->second.lastSeen)) {
                victim = it;
            }
        }
        if (victim == users_.end()) {
            return;  // all flagged or busy: grow rather than forget a flag
        }
        users_.erase(victim);
    }
}

std::size_t AccountBook::placesCap() const {
    // Enough to show the evidence past the threshold, bounded whatever a bot does.
    return std::min<std::size_t>(256, std::max(config_.places.maxAddresses, config_.places.maxDestinations) + 16);
}

AccountView AccountBook::viewOf(const std::string& key, const User& u, std::int64_t now) const {
    AccountView v;
    const int window = config_.limits.window;
    v.messages = std::max(u.messages.count(now, window), u.fleetMessages.count(now, window) + u.fleetSentMessages) +
                 u.heldMessages;
    v.recipients =
        std::max(u.recipients.count(now, window), u.fleetRecipients.count(now, window) + u.fleetSentRecipients) +
        u.heldRecipients;
    const auto o = config_.limits.overrides.find(key);
    v.limit = o != config_.limits.overrides.end() ? o->second : config_.limits.perUser;
    v.placesFlagged = hasFlag(u.flags, FlagReason::ManyAddresses) || hasFlag(u.flags, FlagReason::ManyDestinations);
    v.weakPassword = hasFlag(u.flags, FlagReason::WeakPassword);
    return v;
}

AccountView AccountBook::view(const std::string& key, std::int64_t now) {
    return viewOf(key, user(key, now), now);
}

void AccountBook::hold(const std::string& key, SendingKind kind, std::int64_t now) {
    User& u = user(key, now);
    ++(kind == SendingKind::Message ? u.heldMessages : u.heldRecipients);
}

void AccountBook::settle(const std::string& key, SendingKind kind, bool accepted, std::int64_t now) {
    User& u = user(key, now);
    unsigned& held = kind == SendingKind::Message ? u.heldMessages : u.heldRecipients;
    if (held > 0) {
        --held;
    }
    if (accepted) {
        (kind == SendingKind::Message ? u.messages : u.recipients).add(now, config_.limits.window);
        dirty_ = true;
    }
}

AccountBook::Login AccountBook::login(const std::string& key, const std::string& addressKey,
                                      const std::string& destination, std::int64_t now) {
    User& u = user(key, now);
    const int window = config_.places.window;
    u.addresses.prune(now, window);
    u.destinations.prune(now, window);
    u.addresses.see(addressKey, now, placesCap());
    u.destinations.see(destination, now, placesCap());
    dirty_ = true;
    Login out;
    out.addresses = u.addresses.count(now, window);
    out.destinations = u.destinations.count(now, window);
    const auto check = [&](FlagReason reason, unsigned n, unsigned max, const RecentSet& set, const char* what) {
        if (max == 0 || n <= max) {
            return;
        }
        const std::string evidence = std::to_string(n) + " " + what + " in " + std::to_string(window) +
                                     "s (max " + std::to_string(max) + "): " + set.list(now, window);
        if (flag(key, reason, n, evidence, now)) {
            out.raised.push_back(AccountFlag{reason, now, now, n, evidence});
        }
    };
    check(FlagReason::ManyAddresses, out.addresses, config_.places.maxAddresses, u.addresses, "addresses");
    check(FlagReason::ManyDestinations, out.destinations, config_.places.maxDestinations, u.destinations,
          "destinations");
    out.view = viewOf(key, u, now);
    return out;
}

bool AccountBook::flag(const std::string& key, FlagReason reason, unsigned count, const std::string& evidence,
                       std::int64_t now) {
    User& u = user(key, now);
    dirty_ = true;
    for (AccountFlag& f : u.flags) {
        if (f.reason == reason) {
            f.last = now;
            f.count = std::max(f.count, count);
            f.evidence = evidence;
            return false;
        }
    }
    u.flags.push_back(AccountFlag{reason, now, now, count, evidence});
    return true;
}

bool AccountBook::unflag(const std::string& key, FlagReason reason) {
    auto it = users_.find(key);
    if (it == users_.end() || !hasFlag(it->second.flags, reason)) {
        return false;
    }
    auto& flags = it->second.flags;
    flags.erase(std::remove_if(flags.begin(), flags.end(), [&](const AccountFlag& f) { return f.reason == reason; }),
                flags.end());
    dirty_ = true;
    return true;
}

bool AccountBook::clear(const std::string& key) {
    auto it = users_.find(key);
    if (it == users_.end() || it->second.flags.empty()) {
        return false;
    }
    // Without its history too: the next login from anywhere would flag it again at once.
    forgetHistory(it->second);
    dirty_ = true;
    return true;
}

void AccountBook::forgetHistory(User& u) {
    const unsigned heldMessages = u.heldMessages;
    const unsigned heldRecipients = u.heldRecipients;
    u = User{};
    u.heldMessages = heldMessages;
    u.heldRecipients = heldRecipients;
}

std::vector<FlaggedAccount> AccountBook::flagged() const {
    std::vector<FlaggedAccount> out;
    for (const auto& [key, u] : users_) {
        if (!u.flags.empty()) {
            out.push_back(FlaggedAccount{key, u.flags});
        }
    }
    std::sort(out.begin(), out.end(), [](const FlaggedAccount& a, const FlaggedAccount& b) { return a.user < b.user; });
    return out;
}

void AccountBook::prune(std::int64_t now) {
    for (auto it = users_.begin(); it != users_.end();) {
        User& u = it->second;
        u.messages.prune(now, config_.limits.window);
        u.recipients.prune(now, config_.limits.window);
        u.fleetMessages.prune(now, config_.limits.window);
        u.fleetRecipients.prune(now, config_.limits.window);
        u.addresses.prune(now, config_.places.window);
        u.destinations.prune(now, config_.places.window);
        it = idle(u) ? users_.erase(it) : std::next(it);
    }
}

// One account per "user" line, its counters and flags on the lines after it:
//   user NAME LAST_SEEN
//   msg START COUNT | rcpt START COUNT          buckets of the limits window
//   addr KEY FIRST LAST | dest KEY FIRST LAST   the places window
//   flag REASON FIRST LAST COUNT EVIDENCE
// Fields are escapeField()-ed (no spaces inside one).  No password, no hash of one.
std::string AccountBook::serialise(std::int64_t now) {
    prune(now);
    std::vector<std::string> keys;
    for (const auto& entry : users_) {
        keys.push_back(entry.first);
    }
    std::sort(keys.begin(), keys.end());
    std::string out = std::string(kHeader) + "\n";
    const auto n = [](std::int64_t v) { return std::to_string(v); };
    for (const std::string& key : keys) {
        const User& u = users_.at(key);
        out += "user " + escapeField(key) + " " + n(u.lastSeen) + "\n";
        for (const auto& [start, count] : u.messages.buckets()) {
            out += "msg " + n(start) + " " + n(count) + "\n";
        }
        for (const auto& [start, count] : u.recipients.buckets()) {
            out += "rcpt " + n(start) + " " + n(count) + "\n";
        }
        for (const auto& e : u.addresses.entries()) {
            out += "addr " + escapeField(e.key) + " " + n(e.first) + " " + n(e.last) + "\n";
        }
        for (const auto& e : u.destinations.entries()) {
            out += "dest " + escapeField(e.key) + " " + n(e.first) + " " + n(e.last) + "\n";
        }
        for (const auto& f : u.flags) {
            out += std::string("flag ") + flagReasonName(f.reason) + " " + n(f.first) + " " + n(f.last) + " " +
                   n(f.count) + " " + escapeField(f.evidence) + "\n";
        }
    }
    return out;
}

bool AccountBook::load(const std::string& text, std::int64_t now, std::string* error) {
    std::unordered_map<std::string, User> users;
    std::istringstream in(text);
    std::string line;
    User* current = nullptr;
    for (int lineNo = 1; std::getline(in, line); ++lineNo) {
        const auto fail = [&](const std::string& why) {
            *error = "line " + std::to_string(lineNo) + ": " + why;
            return false;
        };
        if (lineNo == 1) {
            if (line != kHeader) {
                return fail("not a subproxy accounts file (expected \"" + std::string(kHeader) + "\")");
            }
            continue;
        }
        std::istringstream fields(line);
        std::string kind, a, b, c, d, e;
        fields >> kind >> a >> b >> c >> d >> e;
        std::int64_t x = 0, y = 0, z = 0;
        if (kind == "user") {
            const auto name = unescapeField(a);
            if (!name || !number(b, x)) {
                return fail("bad user line");
            }
            current = &users[*name];
            current->lastSeen = x;
            continue;
        }
        if (!current) {
            return fail("\"" + kind + "\" before any user line");
        }
        if ((kind == "msg" || kind == "rcpt") && number(a, x) && number(b, y)) {
            (kind == "msg" ? current->messages : current->recipients).restore(x, static_cast<unsigned>(y));
        } else if ((kind == "addr" || kind == "dest") && unescapeField(a) && number(b, x) && number(c, y)) {
            (kind == "addr" ? current->addresses : current->destinations).restore({*unescapeField(a), x, y});
        } else if (kind == "flag" && parseFlagReason(a) && number(b, x) && number(c, y) && number(d, z) &&
                   unescapeField(e)) {
            current->flags.push_back(AccountFlag{*parseFlagReason(a), x, y, static_cast<unsigned>(z), *unescapeField(e)});
        } else {
            return fail("cannot read \"" + kind + "\" line");
        }
    }
    users_ = std::move(users);
    prune(now);
    dirty_ = false;
    return true;
}

}  // namespace subproxy
