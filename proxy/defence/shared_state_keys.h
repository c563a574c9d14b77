// The state several gateways share through Redis (issue 11), the pure part: the key names under
// state.key_prefix, the messages on the events channel, the Lua scripts that make each update
// one atomic round trip, and the readers of their replies.  No I/O: io/shared_state.cpp sends
// them (io/redis_client.cpp), and unit tests check names, messages and replies byte for byte.
//
// Keys (P = state.key_prefix; every one expires on its own unless said):
//   P fail:addr:KEY        AUTH failures from an address key (ban_list.h addressKey), INCR, EXPIRE window
//   P fail:user:NAME       AUTH failures for a user name (percent-encoded), INCR, EXPIRE window
//   P bans                 sorted set: address key -> ban end (unix time); pruned by the scripts
//   P banfailures          hash: address key -> failures that led to the ban (pruned with bans)
//   P events               pub/sub channel: "ban KEY UNTIL FAILURES", "lift KEY", "greet CLIENT TTL"
//   P fanout:CLIENT        HyperLogLog of the addresses a client dialled, EXPIRE trap.fanout_window
//   P greet:CLIENT         pregreet pass, SET EX trap.greet_cache_ttl
//   P mig:rec:USER ADDR PORT  hash count/first/last/mech/tls, EXPIRE migration.history_days
//   P mig:index            sorted set of "USER ADDR PORT" by last submission (bounded: max_entries)
//   P mig:day:DAY          hash port -> submissions that UTC day
//   P mig:users:DAY:PORT   HyperLogLog of the users of that day and port
//   P mig:totals           hash port -> submissions ever (no expiry, like the state file's totals)
//   P acct:...             the per-user accounts (issue 12): see fleet_accounts.h
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace subproxy {

// A reply as hiredis hands it over, copied out of its C struct (io/redis_client.cpp).
struct RedisValue {
    enum class Type { Nil, Integer, String, Status, Error, Array };
    Type type = Type::Nil;
    long long integer = 0;
    std::string str;  // String, Status, Error
    std::vector<RedisValue> elements;

    bool isError() const { return type == Type::Error; }
    // An Integer, or a String holding a decimal integer (Lua numbers come back as integers,
    // hash fields as strings).
    std::optional<long long> asInteger() const;
};

class SharedStateKeys {
public:
    explicit SharedStateKeys(std::string prefix) : prefix_(std::move(prefix)) {}
    const std::string& prefix() const { return prefix_; }

    std::string addressFailures(std::string_view addressKey) const { return prefix_ + "fail:addr:" + std::string(addressKey); }
    std::string userFailures(std::string_view user) const;
    std::string bans() const { return prefix_ + "bans"; }
    std::string banFailures() const { return prefix_ + "banfailures"; }
    std::string events() const { return prefix_ + "events"; }
    std::string fanOut(std::string_view client) const { return prefix_ + "fanout:" + std::string(client); }
    std::string greet(std::string_view client) const { return prefix_ + "greet:" + std::string(client); }
    // "USER ADDRESS PORT" with escapeField (migration_report.h): no spaces inside the fields.
    static std::string migrationMember(const std::string& user, const std::string& address, int port);
    std::string migrationRecord(const std::string& member) const { return prefix_ + "mig:rec:" + member; }
    std::string migrationIndex() const { return prefix_ + "mig:index"; }
    std::string migrationDay(std::int64_t day) const;  // days since 1970-01-01
    std::string migrationUsers(std::int64_t day, int port) const;
    std::string migrationTotals() const { return prefix_ + "mig:totals"; }

private:
    std::string prefix_;
};

// A message on the events channel.
struct SharedEvent {
    enum class Kind { Ban, Lift, Greet };
    Kind kind = Kind::Ban;
    std::string key;            // address key (Ban, Lift) or client address (Greet)
    std::int64_t until = 0;     // Ban: end (unix time)
    unsigned failures = 0;      // Ban
    std::int64_t ttl = 0;       // Greet: seconds
};
std::string formatEvent(const SharedEvent& event);
std::optional<SharedEvent> parseEvent(std::string_view text);

// The scripts (EVAL; each names its KEYS and ARGV in a comment in the .cpp).
extern const char* const kAuthFailureScript;  // -> {address count, user count, ban end or 0}
extern const char* const kBanScript;          // -> 1
extern const char* const kLiftScript;         // -> 1 when a ban was lifted, else 0
extern const char* const kListBansScript;     // -> {key, until, failures, ...}
extern const char* const kFanOutScript;       // -> distinct dialled addresses (estimate)
extern const char* const kGreetScript;        // -> 1
extern const char* const kMigrationScript;    // -> 1

struct SharedFailure {
    long long addressFailures = 0;
    long long userFailures = 0;
    std::int64_t bannedUntil = 0;  // this failure made the fleet's ban; 0: no new ban
};
std::optional<SharedFailure> parseFailureReply(const RedisValue& reply);

struct SharedBan {
    std::string key;
    std::int64_t until = 0;
    unsigned failures = 0;
};
std::optional<std::vector<SharedBan>> parseBanList(const RedisValue& reply);

}  // namespace subproxy
