// See shared_state_keys.h.
#include "defence/shared_state_keys.h"

#include <cerrno>
#include <cstdlib>

#include "defence/ban_list.h"          // percentEncode
#include "ops/migration_report.h"      // escapeField, formatDay

namespace subproxy {

std::optional<long long> RedisValue::asInteger() const {
    if (type == Type::Integer) {
        return integer;
    }
    if (type != Type::String || str.empty()) {
        return std::nullopt;
    }
    errno = 0;
    char* end = nullptr;
    const long long n = std::strtoll(str.c_str(), &end, 10);
    if (errno != 0 || *end != '\0') {
        return std::nullopt;
    }
    return n;
}

std::string SharedStateKeys::userFailures(std::string_view user) const {
    // User names are the customer's bytes: encoded, so that a key is one printable word.
    return prefix_ + "fail:user:" + percentEncode(user);
}

std::string SharedStateKeys::migrationMember(const std::string& user, const std::string& address, int port) {
    return escapeField(user) + " " + escapeField(address) + " " + std::to_string(port);
}

std::string SharedStateKeys::migrationDay(std::int64_t day) const { return prefix_ + "mig:day:" + formatDay(day); }

std::string SharedStateKeys::migrationUsers(std::int64_t day, int port) const {
    return prefix_ + "mig:users:" + formatDay(day) + ":" + std::to_string(port);
}

// ---------------------------------------------------------------------------------------------
// Events

std::string formatEvent(const SharedEvent& e) {
    switch (e.kind) {
    case SharedEvent::Kind::Ban:
        return "ban " + e.key + " " + std::to_string(e.until) + " " + std::to_string(e.failures);
    case SharedEvent::Kind::Lift:
        return "lift " + e.key;
    case SharedEvent::Kind::Greet:
        return "greet " + e.key + " " + std::to_string(e.ttl);
    }
    return {};
}

namespace {

// The next space-separated word of `text` (moved past it); empty at the end.
std::string_view word(std::string_view& text) {
    const auto space = text.find(' ');
    const std::string_view w = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
    return w;
}

std::optional<std::int64_t> number(std::string_view w) {
    if (w.empty() || w.size() > 18) {
        return std::nullopt;
    }
    std::int64_t n = 0;
    for (char c : w) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        n = n * 10 + (c - '0');
    }
    return n;
}

bool printableWord(std::string_view w) {
    if (w.empty() || w.size() > 100) {
        return false;
    }
    for (char c : w) {
        if (c <= ' ' || c > '~') {
            return false;
        }
    }
    return true;
}

}  // namespace

std::optional<SharedEvent> parseEvent(std::string_view text) {
    SharedEvent e;
    const std::string_view verb = word(text);
    const std::string_view key = word(text);
    if (!printableWord(key)) {
        return std::nullopt;
    }
    e.key = std::string(key);
    if (verb == "lift" && text.empty()) {
        e.kind = SharedEvent::Kind::Lift;
        return e;
    }
    if (verb == "ban") {
        const auto until = number(word(text));
        const auto failures = number(word(text));
        if (!until || !failures || !text.empty() || *failures > 0xffffffffLL) {
            return std::nullopt;
        }
        e.kind = SharedEvent::Kind::Ban;
        e.until = *until;
        e.failures = static_cast<unsigned>(*failures);
        return e;
    }
    if (verb == "greet") {
        const auto ttl = number(word(text));
        if (!ttl || !text.empty()) {
            return std::nullopt;
        }
        e.kind = SharedEvent::Kind::Greet;
        e.ttl = *ttl;
        return e;
    }
    return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Scripts.  Every key a script touches is passed in KEYS (Redis Cluster and ACL key patterns
// see them); the gateway's clock is ARGV "now" (gateways run NTP), so that a replayed update
// keeps the time it happened.  Bans expire from the sorted set by score: each script that adds
// one first drops up to 1000 ended ones (and their failure figures).

#define SUBPROXY_PRUNE_BANS                                                                    \
    "local function prune(bans, failures, now)\n"                                              \
    "  local ended = redis.call('ZRANGEBYSCORE', bans, '-inf', now, 'LIMIT', 0, 1000)\n"       \
    "  for _, k in ipairs(ended) do\n"                                                         \
    "    redis.call('ZREM', bans, k)\n"                                                        \
    "    redis.call('HDEL', failures, k)\n"                                                    \
    "  end\n"                                                                                  \
    "end\n"

// KEYS: fail:addr, fail:user, bans, banfailures.  ARGV: window, ban threshold, ban time, now,
// address key, channel, "1" when there is a user name.
const char* const kAuthFailureScript =
    SUBPROXY_PRUNE_BANS
    "local now = tonumber(ARGV[4])\n"
    "local a = redis.call('INCR', KEYS[1])\n"
    "if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end\n"
    "local u = 0\n"
    "if ARGV[7] == '1' then\n"
    "  u = redis.call('INCR', KEYS[2])\n"
    "  if redis.call('TTL', KEYS[2]) < 0 then redis.call('EXPIRE', KEYS[2], ARGV[1]) end\n"
    "end\n"
    "local ends = 0\n"
    "local threshold = tonumber(ARGV[2])\n"
    "if threshold > 0 and a >= threshold then\n"
    "  prune(KEYS[3], KEYS[4], now)\n"
    "  local current = redis.call('ZSCORE', KEYS[3], ARGV[5])\n"
    "  if not current or tonumber(current) <= now then\n"
    "    ends = now + tonumber(ARGV[3])\n"
    "    redis.call('ZADD', KEYS[3], ends, ARGV[5])\n"
    "    redis.call('HSET', KEYS[4], ARGV[5], a)\n"
    "    redis.call('PUBLISH', ARGV[6], 'ban ' .. ARGV[5] .. ' ' .. ends .. ' ' .. a)\n"
    "  end\n"
    "end\n"
    "return {a, u, ends}\n";

// KEYS: bans, banfailures.  ARGV: address key, end, failures, channel, now.  A longer ban in
// force stays.
const char* const kBanScript =
    SUBPROXY_PRUNE_BANS
    "prune(KEYS[1], KEYS[2], ARGV[5])\n"
    "local current = redis.call('ZSCORE', KEYS[1], ARGV[1])\n"
    "if current and tonumber(current) >= tonumber(ARGV[2]) then return 0 end\n"
    "redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])\n"
    "redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])\n"
    "redis.call('PUBLISH', ARGV[4], 'ban ' .. ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. ARGV[3])\n"
    "return 1\n";

// KEYS: bans, banfailures, fail:addr.  ARGV: address key, channel, now.  Published even when
// Redis holds no ban: a gateway may still hold one it made while Redis was unreachable.
const char* const kLiftScript =
    "local live = redis.call('ZSCORE', KEYS[1], ARGV[1])\n"
    "redis.call('ZREM', KEYS[1], ARGV[1])\n"
    "redis.call('HDEL', KEYS[2], ARGV[1])\n"
    "redis.call('DEL', KEYS[3])\n"
    "redis.call('PUBLISH', ARGV[2], 'lift ' .. ARGV[1])\n"
    "if live and tonumber(live) > tonumber(ARGV[3]) then return 1 end\n"
    "return 0\n";

// KEYS: bans, banfailures.  ARGV: now.
const char* const kListBansScript =
    "local out = {}\n"
    "local items = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES')\n"
    "for i = 1, #items, 2 do\n"
    "  local f = redis.call('HGET', KEYS[2], items[i]) or '0'\n"
    "  out[#out + 1] = items[i]\n"
    "  out[#out + 1] = items[i + 1]\n"
    "  out[#out + 1] = tostring(f)\n"
    "end\n"
    "return out\n";

// KEYS: fanout:CLIENT.  ARGV: dialled address, window.  The window opens at the first
// connection, as the local tracker's does.
const char* const kFanOutScript =
    "redis.call('PFADD', KEYS[1], ARGV[1])\n"
    "if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end\n"
    "return redis.call('PFCOUNT', KEYS[1])\n";

// KEYS: greet:CLIENT.  ARGV: ttl, channel, message.
const char* const kGreetScript =
    "redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])\n"
    "redis.call('PUBLISH', ARGV[2], ARGV[3])\n"
    "return 1\n";

// KEYS: mig:rec:MEMBER, mig:index, mig:day:DAY, mig:users:DAY:PORT, mig:totals.  ARGV: member,
// now, mechanism, tls, ttl (history_days), max_entries, port, identity (user, or @address).
// A replayed (older) submission counts but moves neither "last" nor the index back.
const char* const kMigrationScript =
    "local now = tonumber(ARGV[2])\n"
    "local ttl = tonumber(ARGV[5])\n"
    "redis.call('HINCRBY', KEYS[1], 'count', 1)\n"
    "local first = tonumber(redis.call('HGET', KEYS[1], 'first'))\n"
    "if not first or now < first then redis.call('HSET', KEYS[1], 'first', ARGV[2]) end\n"
    "local last = tonumber(redis.call('HGET', KEYS[1], 'last'))\n"
    "if not last or now >= last then\n"
    "  redis.call('HSET', KEYS[1], 'last', ARGV[2], 'mech', ARGV[3], 'tls', ARGV[4])\n"
    "end\n"
    "redis.call('EXPIRE', KEYS[1], ttl)\n"
    "local score = redis.call('ZSCORE', KEYS[2], ARGV[1])\n"
    "if not score or now > tonumber(score) then redis.call('ZADD', KEYS[2], now, ARGV[1]) end\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl)\n"
    "local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[6])\n"
    "if over > 0 then redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1) end\n"
    "redis.call('HINCRBY', KEYS[3], ARGV[7], 1)\n"
    "redis.call('EXPIRE', KEYS[3], ttl)\n"
    "redis.call('PFADD', KEYS[4], ARGV[8])\n"
    "redis.call('EXPIRE', KEYS[4], ttl)\n"
    "redis.call('HINCRBY', KEYS[5], ARGV[7], 1)\n"
    "return 1\n";

#undef SUBPROXY_PRUNE_BANS

// ---------------------------------------------------------------------------------------------
// Replies

std::optional<SharedFailure> parseFailureReply(const RedisValue& reply) {
    if (reply.type != RedisValue::Type::Array || reply.elements.size() != 3) {
        return std::nullopt;
    }
    const auto a = reply.elements[0].asInteger();
    const auto u = reply.elements[1].asInteger();
    const auto ends = reply.elements[2].asInteger();
    if (!a || !u || !ends || *a < 0 || *u < 0 || *ends < 0) {
        return std::nullopt;
    }
    return SharedFailure{*a, *u, *ends};
}

std::optional<std::vector<SharedBan>> parseBanList(const RedisValue& reply) {
    if (reply.type != RedisValue::Type::Array || reply.elements.size() % 3 != 0) {
        return std::nullopt;
    }
    std::vector<SharedBan> bans;
    for (std::size_t i = 0; i < reply.elements.size(); i += 3) {
        const RedisValue& key = reply.elements[i];
        // Scores come back as "1767225600" (or "1.7672256e+09" from a float a script stored).
        const std::string& score = reply.elements[i + 1].str;
        const auto failures = reply.elements[i + 2].asInteger();
        char* end = nullptr;
        const double until = std::strtod(score.c_str(), &end);
        if (key.type != RedisValue::Type::String || !printableWord(key.str) || score.empty() || *end != '\0' ||
            !failures || *failures < 0) {
            return std::nullopt;
        }
        bans.push_back({key.str, static_cast<std::int64_t>(until), static_cast<unsigned>(*failures)});
    }
    return bans;
}

}  // namespace subproxy
