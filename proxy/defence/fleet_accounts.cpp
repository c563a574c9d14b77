// See fleet_accounts.h.
#include "defence/fleet_accounts.h"

#include <algorithm>
#include <map>

#include "defence/account_window.h"  // WindowCount: the local window's slot
#include "ops/migration_report.h"    // escapeField, unescapeField: the state files' one escaping
#include "wire/text_util.h"           // printable

namespace subproxy {

namespace {

std::vector<std::string_view> words(std::string_view text) {
    std::vector<std::string_view> out;
    while (!text.empty()) {
        const auto space = text.find(' ');
        out.push_back(text.substr(0, space));
        text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
    }
    return out;
}

std::optional<std::int64_t> number(std::string_view w) {
    if (w.empty() || w.size() > 18 || w.find_first_not_of("0123456789") != std::string_view::npos) {
        return std::nullopt;
    }
    std::int64_t n = 0;
    for (char c : w) {
        n = n * 10 + (c - '0');
    }
    return n;
}

std::optional<std::string> field(std::string_view w) { return w.empty() ? std::nullopt : unescapeField(std::string(w)); }

// "FIRST LAST COUNT EVIDENCE" (the hash's value and the message's tail) into `flag`.
bool readFlagTail(const std::vector<std::string_view>& w, std::size_t at, AccountFlag& flag) {
    if (w.size() != at + 4) {
        return false;
    }
    const auto first = number(w[at]);
    const auto last = number(w[at + 1]);
    const auto count = number(w[at + 2]);
    const auto evidence = field(w[at + 3]);
    if (!first || !last || !count || *count > 0xffffffffLL || !evidence) {
        return false;
    }
    flag.first = *first;
    flag.last = *last;
    flag.count = static_cast<unsigned>(*count);
    flag.evidence = *evidence;
    return true;
}

std::optional<std::vector<std::pair<std::int64_t, unsigned>>> readBuckets(const RedisValue& flat) {
    if (flat.type != RedisValue::Type::Array || flat.elements.size() % 2 != 0) {
        return std::nullopt;
    }
    std::vector<std::pair<std::int64_t, unsigned>> out;
    for (std::size_t i = 0; i < flat.elements.size(); i += 2) {
        const auto start = flat.elements[i].asInteger();
        const auto n = flat.elements[i + 1].asInteger();
        if (!start || !n || *n < 0 || *n > 0xffffffffLL) {
            return std::nullopt;
        }
        out.emplace_back(*start, static_cast<unsigned>(*n));
    }
    std::sort(out.begin(), out.end());  // oldest first, as WindowCount keeps them
    return out;
}

std::optional<std::vector<std::string>> readMembers(const RedisValue& list) {
    if (list.type != RedisValue::Type::Array) {
        return std::nullopt;
    }
    std::vector<std::string> out;
    for (auto it = list.elements.rbegin(); it != list.elements.rend(); ++it) {  // most recent first
        // Addresses, which go into a flag's evidence and its fail2ban line: whatever else
        // Redis holds must not break that line (a line break would forge one) or grow it.
        out.push_back(printable(it->str, 64));
    }
    return out;
}

}  // namespace

FleetWindow fleetWindow(std::int64_t now, int window) {
    const std::int64_t slot = WindowCount::slot(window);
    std::int64_t bucket = now - now % slot;
    if (now % slot < 0) {
        bucket -= slot;
    }
    // A bucket begun at `start` is live while start + slot + window > now (WindowCount::live).
    return FleetWindow{bucket, now - slot - window, static_cast<int>(window + slot)};
}

std::string FleetAccountKeys::messages(std::string_view user) const {
    return prefix_ + "acct:msg:" + escapeField(std::string(user));
}
std::string FleetAccountKeys::recipients(std::string_view user) const {
    return prefix_ + "acct:rcpt:" + escapeField(std::string(user));
}
std::string FleetAccountKeys::addresses(std::string_view user) const {
    return prefix_ + "acct:addr:" + escapeField(std::string(user));
}
std::string FleetAccountKeys::destinations(std::string_view user) const {
    return prefix_ + "acct:dest:" + escapeField(std::string(user));
}
std::string FleetAccountKeys::flagField(const std::string& user, FlagReason reason) {
    return escapeField(user) + " " + flagReasonName(reason);
}

// ---------------------------------------------------------------------------------------------
// Scripts (KEYS and ARGV named above each)

namespace {

// KEYS: acct:msg, acct:rcpt.  ARGV: messages, recipients, bucket, deadUpTo, ttl, message limit,
// recipient limit, channel, message.  -> {{start, count, ...}, {start, count, ...}}, the live
// buckets after the update.
const char* const kFleetCountScript =
    "local out = {}\n"
    "local reached = false\n"
    "for i = 1, 2 do\n"
    "  local by = tonumber(ARGV[i])\n"
    "  local h = redis.call('HGETALL', KEYS[i])\n"
    "  local live = {}\n"
    "  for j = 1, #h, 2 do\n"
    "    if tonumber(h[j]) <= tonumber(ARGV[4]) then redis.call('HDEL', KEYS[i], h[j])\n"
    "    else live[h[j]] = tonumber(h[j + 1]) end\n"
    "  end\n"
    "  if by > 0 then\n"
    "    live[ARGV[3]] = redis.call('HINCRBY', KEYS[i], ARGV[3], by)\n"
    "    redis.call('EXPIRE', KEYS[i], ARGV[5])\n"
    "  end\n"
    "  local flat, total = {}, 0\n"
    "  for k, v in pairs(live) do flat[#flat + 1] = k; flat[#flat + 1] = v; total = total + v end\n"
    "  local limit = tonumber(ARGV[5 + i])\n"
    "  if by > 0 and limit > 0 and total >= limit then reached = true end\n"
    "  out[i] = flat\n"
    "end\n"
    "if reached then redis.call('PUBLISH', ARGV[8], ARGV[9]) end\n"
    "return out\n";

// KEYS: acct:addr, acct:dest.  ARGV: address, destination, now, cutoff (now - window), ttl,
// cap, max addresses, max destinations.  -> {addresses, destinations, {members past the max,
// least recent first} x 2}.  ZADD GT: a replayed (older) login never moves "last seen" back.
const char* const kFleetPlacesScript =
    "local out = {}\n"
    "for i = 1, 2 do\n"
    "  redis.call('ZADD', KEYS[i], 'GT', ARGV[3], ARGV[i])\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[4])\n"
    "  local n = redis.call('ZCARD', KEYS[i])\n"
    "  local cap = tonumber(ARGV[6])\n"
    "  if cap > 0 and n > cap then\n"
    "    redis.call('ZREMRANGEBYRANK', KEYS[i], 0, n - cap - 1)\n"
    "    n = cap\n"
    "  end\n"
    "  redis.call('EXPIRE', KEYS[i], ARGV[5])\n"
    "  out[i] = n\n"
    "end\n"
    "for i = 1, 2 do\n"
    "  local max = tonumber(ARGV[6 + i])\n"
    "  if max > 0 and out[i] > max then\n"
    "    out[2 + i] = redis.call('ZRANGEBYSCORE', KEYS[i], '(' .. ARGV[4], '+inf')\n"
    "  else\n"
    "    out[2 + i] = {}\n"
    "  end\n"
    "end\n"
    "return out\n";

// KEYS: acct:flags.  ARGV: "USER REASON", first, "LAST COUNT EVIDENCE", channel.  A flag
// already there keeps its (earlier) first time.
const char* const kFleetFlagScript =
    "local first = ARGV[2]\n"
    "local old = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if old then\n"
    "  local f = string.match(old, '^(%d+) ')\n"
    "  if f and tonumber(f) < tonumber(first) then first = f end\n"
    "end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], first .. ' ' .. ARGV[3])\n"
    "redis.call('PUBLISH', ARGV[4], 'account-flag ' .. ARGV[1] .. ' ' .. first .. ' ' .. ARGV[3])\n"
    "return 1\n";

// KEYS: acct:flags.  ARGV: "USER REASON", channel.
const char* const kFleetUnflagScript =
    "redis.call('HDEL', KEYS[1], ARGV[1])\n"
    "redis.call('PUBLISH', ARGV[2], 'account-unflag ' .. ARGV[1])\n"
    "return 1\n";

// KEYS: acct:flags, acct:msg, acct:rcpt, acct:addr, acct:dest, acct:cleared.  ARGV: USER,
// channel, "1" when the calling gateway had a flag, now, the oldest clear to remember, its TTL,
// then the account's "USER REASON" field for every reason.
// -> the flags removed.  The fields are named rather than found: a scan of the hash would cost
// every flagged account of the fleet, with Redis stalled for every gateway meanwhile.  The
// counters and places go with the flags (as AccountBook::clear forgets them), and the clear is
// announced even when Redis held no flag but the caller did (raised while Redis was
// unreachable); nothing at all changes for an account flagged nowhere.
const char* const kFleetClearScript =
    "local n = redis.call('HDEL', KEYS[1], unpack(ARGV, 7))\n"
    "if n > 0 or ARGV[3] == '1' then\n"
    "  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])\n"
    "  redis.call('ZADD', KEYS[6], ARGV[4], ARGV[1])\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', '(' .. ARGV[5])\n"
    "  redis.call('EXPIRE', KEYS[6], ARGV[6])\n"
    "  redis.call('PUBLISH', ARGV[2], 'account-clear ' .. ARGV[1])\n"
    "end\n"
    "return n\n";

// KEYS: acct:flags, acct:cleared.  -> {HGETALL flags, {USER, when, ...}}: one read, so that
// the flags and the clears are of the same moment.
const char* const kFleetFlagListScript =
    "return {redis.call('HGETALL', KEYS[1]), redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '+inf', 'WITHSCORES')}\n";

}  // namespace

ScriptCall fleetCountCall(const FleetAccountKeys& keys, const FleetCountUpdate& u) {
    const FleetWindow w = fleetWindow(u.now, u.window);
    AccountEvent reached;
    reached.kind = AccountEvent::Kind::Counts;
    reached.user = u.user;
    return {kFleetCountScript,
            {keys.messages(u.user), keys.recipients(u.user)},
            {std::to_string(u.messages), std::to_string(u.recipients), std::to_string(w.bucket),
             std::to_string(w.deadUpTo), std::to_string(w.ttl), std::to_string(u.limit.messages),
             std::to_string(u.limit.recipients), keys.events(), formatAccountEvent(reached)}};
}

std::optional<FleetCounts> parseFleetCounts(const RedisValue& reply) {
    if (reply.type != RedisValue::Type::Array || reply.elements.size() != 2) {
        return std::nullopt;
    }
    auto messages = readBuckets(reply.elements[0]);
    auto recipients = readBuckets(reply.elements[1]);
    if (!messages || !recipients) {
        return std::nullopt;
    }
    return FleetCounts{std::move(*messages), std::move(*recipients)};
}

ScriptCall fleetLoginCall(const FleetAccountKeys& keys, const FleetLogin& l) {
    return {kFleetPlacesScript,
            {keys.addresses(l.user), keys.destinations(l.user)},
            {l.address, l.destination, std::to_string(l.now), std::to_string(l.now - l.window),
             std::to_string(l.window), std::to_string(l.cap), std::to_string(l.maxAddresses),
             std::to_string(l.maxDestinations)}};
}

std::optional<FleetPlaces> parseFleetPlaces(const RedisValue& reply) {
    if (reply.type != RedisValue::Type::Array || reply.elements.size() != 4) {
        return std::nullopt;
    }
    const auto a = reply.elements[0].asInteger();
    const auto d = reply.elements[1].asInteger();
    auto addresses = readMembers(reply.elements[2]);
    auto destinations = readMembers(reply.elements[3]);
    if (!a || !d || *a < 0 || *d < 0 || *a > 0xffffffffLL || *d > 0xffffffffLL || !addresses || !destinations) {
        return std::nullopt;
    }
    return FleetPlaces{static_cast<unsigned>(*a), static_cast<unsigned>(*d), std::move(*addresses),
                       std::move(*destinations)};
}

ScriptCall fleetFlagCall(const FleetAccountKeys& keys, const std::string& user, const AccountFlag& flag) {
    return {kFleetFlagScript,
            {keys.flags()},
            {FleetAccountKeys::flagField(user, flag.reason), std::to_string(flag.first),
             std::to_string(flag.last) + " " + std::to_string(flag.count) + " " + escapeField(flag.evidence),
             keys.events()}};
}

ScriptCall fleetUnflagCall(const FleetAccountKeys& keys, const std::string& user, FlagReason reason) {
    return {kFleetUnflagScript, {keys.flags()}, {FleetAccountKeys::flagField(user, reason), keys.events()}};
}

ScriptCall fleetClearCall(const FleetAccountKeys& keys, const std::string& user, bool flaggedHere,
                          std::int64_t now) {
    ScriptCall call{kFleetClearScript,
                    {keys.flags(), keys.messages(user), keys.recipients(user), keys.addresses(user),
                     keys.destinations(user), keys.cleared()},
                    {escapeField(user), keys.events(), flaggedHere ? "1" : "0", std::to_string(now),
                     std::to_string(now - kClearMemory), std::to_string(kClearMemory)}};
    for (int r = 0; r < kFlagReasons; ++r) {
        call.args.push_back(FleetAccountKeys::flagField(user, static_cast<FlagReason>(r)));
    }
    return call;
}

std::optional<FleetFlags> parseFleetFlags(const RedisValue& reply) {
    if (reply.type != RedisValue::Type::Array || reply.elements.size() % 2 != 0) {
        return std::nullopt;
    }
    FleetFlags out;
    std::map<std::string, std::vector<AccountFlag>> byUser;
    for (std::size_t i = 0; i < reply.elements.size(); i += 2) {
        const auto key = words(reply.elements[i].str);
        const auto value = words(reply.elements[i + 1].str);
        const auto user = key.size() == 2 ? field(key[0]) : std::nullopt;
        const auto reason = key.size() == 2 ? parseFlagReason(key[1]) : std::nullopt;
        AccountFlag flag;
        if (!user || !reason || !readFlagTail(value, 0, flag)) {
            ++out.unreadable;
            continue;
        }
        flag.reason = *reason;
        byUser[*user].push_back(flag);
    }
    for (auto& [user, flags] : byUser) {
        std::sort(flags.begin(), flags.end(), [](const AccountFlag& a, const AccountFlag& b) {
            return static_cast<int>(a.reason) < static_cast<int>(b.reason);
        });
        out.flagged.push_back(FlaggedAccount{user, std::move(flags)});
    }
    return out;
}

std::string unreadableFlagsNote(std::size_t unreadable) {
    return unreadable == 0 ? std::string()
                           : "# " + std::to_string(unreadable) +
                                 " more flags in Redis that this version cannot read (a newer subproxy's?)\n";
}

ScriptCall fleetFlagListCall(const FleetAccountKeys& keys) {
    return {kFleetFlagListScript, {keys.flags(), keys.cleared()}, {}};
}

std::optional<FleetFlagList> parseFleetFlagList(const RedisValue& reply) {
    if (reply.type != RedisValue::Type::Array || reply.elements.size() != 2 ||
        reply.elements[1].type != RedisValue::Type::Array || reply.elements[1].elements.size() % 2 != 0) {
        return std::nullopt;
    }
    auto flags = parseFleetFlags(reply.elements[0]);
    if (!flags) {
        return std::nullopt;
    }
    FleetFlagList out{std::move(flags->flagged), {}, flags->unreadable};
    const auto& clears = reply.elements[1].elements;
    for (std::size_t i = 0; i < clears.size(); i += 2) {
        const auto user = field(clears[i].str);
        const auto when = clears[i + 1].asInteger();
        if (!user || !when) {
            return std::nullopt;
        }
        out.cleared[*user] = *when;
    }
    return out;
}

std::string formatAccountEvent(const AccountEvent& e) {
    const std::string user = escapeField(e.user);
    switch (e.kind) {
    case AccountEvent::Kind::Flag:
        return "account-flag " + user + " " + flagReasonName(e.flag.reason) + " " + std::to_string(e.flag.first) +
               " " + std::to_string(e.flag.last) + " " + std::to_string(e.flag.count) + " " +
               escapeField(e.flag.evidence);
    case AccountEvent::Kind::Unflag:
        return "account-unflag " + user + " " + flagReasonName(e.flag.reason);
    case AccountEvent::Kind::Clear:
        return "account-clear " + user;
    case AccountEvent::Kind::Counts:
        return "account-counts " + user;
    }
    return {};
}

std::optional<AccountEvent> parseAccountEvent(std::string_view text) {
    const auto w = words(text);
    if (w.size() < 2) {
        return std::nullopt;
    }
    AccountEvent e;
    const auto user = field(w[1]);
    if (!user || user->empty()) {
        return std::nullopt;
    }
    e.user = *user;
    const auto reason = w.size() >= 3 ? parseFlagReason(w[2]) : std::nullopt;
    if (w[0] == "account-flag" && reason && readFlagTail(w, 3, e.flag)) {
        e.kind = AccountEvent::Kind::Flag;
    } else if (w[0] == "account-unflag" && reason && w.size() == 3) {
        e.kind = AccountEvent::Kind::Unflag;
    } else if ((w[0] == "account-clear" || w[0] == "account-counts") && w.size() == 2) {
        e.kind = w[0] == "account-clear" ? AccountEvent::Kind::Clear : AccountEvent::Kind::Counts;
    } else {
        return std::nullopt;
    }
    if (reason) {
        e.flag.reason = *reason;
    }
    return e;
}

}  // namespace subproxy
