// Several gateways (issue 11), the pure parts: the state group, key names, channel messages,
// script replies, the replay queue's bounds, bans and counts adopted from the fleet, and the
// migration report read back from Redis.
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "config_fixture.h"
#include "defence/ban_list.h"
#include "defence/shared_state_keys.h"
#include "ops/config.h"
#include "ops/migration_shared.h"
#include "ops/replay_queue.h"
#include "redis_values.h"

using namespace subproxy;
using subproxy::test::array;
using subproxy::test::integer;
using subproxy::test::string;

namespace {

Config withState(const std::string& group) {
    return parseConfig(testing::kMinimalConfig + "state = { " + group + " };", "t.conf");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(shared_state)

BOOST_AUTO_TEST_CASE(state_group_defaults_to_local) {
    const Config c = parseConfig(testing::kMinimalConfig, "t.conf");
    BOOST_TEST((c.state.backend == StateBackend::Local));
    BOOST_TEST(c.state.host == "127.0.0.1");
    BOOST_TEST(c.state.port == 6379);
    BOOST_TEST(c.state.keyPrefix == "subproxy:");
}

BOOST_AUTO_TEST_CASE(state_addresses) {
    Config c = withState("backend = \"redis\"; address = \"[2001:db8::10]:6380\";");
    BOOST_TEST((c.state.backend == StateBackend::Redis));
    BOOST_TEST(c.state.host == "2001:db8::10");
    BOOST_TEST(c.state.port == 6380);
    BOOST_TEST(c.state.socket.empty());
    c = withState("address = \"/run/redis/redis-server.sock\";");
    BOOST_TEST(c.state.socket == "/run/redis/redis-server.sock");
    BOOST_TEST(c.state.host.empty());
    c = withState("address = \"192.0.2.10:6379\"; username = \"gw\"; password = \"pw\"; database = 3;");
    BOOST_TEST(c.state.host == "192.0.2.10");
    BOOST_TEST(c.state.username == "gw");
    BOOST_TEST(c.state.database == 3);
}

BOOST_AUTO_TEST_CASE(state_refusals_name_the_line_and_key) {
    using testing::configError;
    const std::string& base = testing::kMinimalConfig;
    BOOST_TEST(configError(base + "state = {\n address = \"redis.example:6379\"; };").find(
                   "test.conf:4: 'state.address' \"redis.example:6379\": the host must be a numeric") == 0);
    BOOST_TEST(configError(base + "state = { address = \"127.0.0.1\"; };").find("expected HOST:PORT") !=
               std::string::npos);
    BOOST_TEST(configError(base + "state = { address = \"127.0.0.1:0\"; };").find("1 to 65535") != std::string::npos);
    BOOST_TEST(configError(base + "state = { address = \"::1:6379\"; };").find("[ADDRESS]:PORT") !=
               std::string::npos);
    BOOST_TEST(configError(base + "state = { username = \"gw\"; };").find("needs 'state.password'") !=
               std::string::npos);
    BOOST_TEST(configError(base + "state = { key_prefix = \"a b\"; };").find("'state.key_prefix'") !=
               std::string::npos);
    BOOST_TEST(configError(base + "state = { backend = \"etcd\"; };").find("expected one of \"local\", \"redis\"") !=
               std::string::npos);
    BOOST_TEST(configError(base + "state = { command_timeout = 60000; };").find("between 10 and 5000") !=
               std::string::npos);
    BOOST_TEST(configError(base + "state = { adress = \"x\"; };").find("unknown key 'state.adress'") !=
               std::string::npos);
}

BOOST_AUTO_TEST_CASE(key_names) {
    const SharedStateKeys k("gw1:");
    BOOST_TEST(k.addressFailures("2001:db8:1:2::/64") == "gw1:fail:addr:2001:db8:1:2::/64");
    BOOST_TEST(k.userFailures("al ice@example.com") == "gw1:fail:user:al%20ice@example.com");
    BOOST_TEST(k.bans() == "gw1:bans");
    BOOST_TEST(k.events() == "gw1:events");
    BOOST_TEST(k.fanOut("192.0.2.7") == "gw1:fanout:192.0.2.7");
    BOOST_TEST(k.greet("192.0.2.7") == "gw1:greet:192.0.2.7");
    BOOST_TEST(SharedStateKeys::migrationMember("", "192.0.2.7", 25) == "- 192.0.2.7 25");
    BOOST_TEST(SharedStateKeys::migrationMember("a b", "::1", 465) == "a%20b ::1 465");
    BOOST_TEST(k.migrationDay(20423) == "gw1:mig:day:2025-12-01");
    BOOST_TEST(k.migrationUsers(20423, 25) == "gw1:mig:users:2025-12-01:25");
}

BOOST_AUTO_TEST_CASE(events_round_trip_and_garbage_is_refused) {
    SharedEvent ban;
    ban.key = "2001:db8::/64";
    ban.until = 1767225600;
    ban.failures = 12;
    BOOST_TEST(formatEvent(ban) == "ban 2001:db8::/64 1767225600 12");
    auto back = parseEvent(formatEvent(ban));
    BOOST_REQUIRE(back);
    BOOST_TEST((back->kind == SharedEvent::Kind::Ban));
    BOOST_TEST(back->key == ban.key);
    BOOST_TEST(back->until == ban.until);
    BOOST_TEST(back->failures == 12u);
    back = parseEvent("lift 192.0.2.7");
    BOOST_REQUIRE(back);
    BOOST_TEST((back->kind == SharedEvent::Kind::Lift));
    back = parseEvent("greet 192.0.2.7 86400");
    BOOST_REQUIRE(back);
    BOOST_TEST(back->ttl == 86400);
    for (const char* bad : {"", "ban", "ban 192.0.2.7", "ban 192.0.2.7 -5 1", "ban 192.0.2.7 1 2 3", "lift",
                            "lift 192.0.2.7 extra", "greet 192.0.2.7", "unban 192.0.2.7", "lift a\tb",
                            "ban 192.0.2.7 99999999999999999999 1", "ban 192.0.2.7 1 4294967296"}) {
        BOOST_TEST(!parseEvent(bad), bad);
    }
}

BOOST_AUTO_TEST_CASE(script_replies) {
    auto f = parseFailureReply(array({integer(6), integer(2), integer(1767225600)}));
    BOOST_REQUIRE(f);
    BOOST_TEST(f->addressFailures == 6);
    BOOST_TEST(f->userFailures == 2);
    BOOST_TEST(f->bannedUntil == 1767225600);
    BOOST_TEST(!parseFailureReply(array({integer(6), integer(2)})));
    BOOST_TEST(!parseFailureReply(integer(6)));
    BOOST_TEST(!parseFailureReply(array({integer(-1), integer(0), integer(0)})));

    auto bans = parseBanList(array({string("192.0.2.7"), string("1767225600"), string("5"), string("2001:db8::/64"),
                                    string("1.7672256e+09"), string("0")}));
    BOOST_REQUIRE(bans);
    BOOST_REQUIRE(bans->size() == 2u);
    BOOST_TEST((*bans)[0].key == "192.0.2.7");
    BOOST_TEST((*bans)[0].until == 1767225600);
    BOOST_TEST((*bans)[0].failures == 5u);
    BOOST_TEST((*bans)[1].until == 1767225600);
    BOOST_TEST(parseBanList(array({}))->empty());
    BOOST_TEST(!parseBanList(array({string("192.0.2.7"), string("1767225600")})));
    BOOST_TEST(!parseBanList(array({string("a b"), string("1"), string("0")})));
    BOOST_TEST(!parseBanList(array({string("192.0.2.7"), string("soon"), string("0")})));

    BOOST_TEST(*string("42").asInteger() == 42);
    BOOST_TEST(!string("42x").asInteger());
    BOOST_TEST(!string("").asInteger());
    BOOST_TEST(*integer(-3).asInteger() == -3);
}

BOOST_AUTO_TEST_CASE(replay_queue_drops_the_oldest_and_counts) {
    ReplayQueue<int> q(3);
    for (int i = 1; i <= 5; ++i) {
        q.push(i);
    }
    BOOST_TEST(q.size() == 3u);
    BOOST_TEST(q.dropped() == 2u);
    q.pop();                 // 3 out: 4, 5 left
    q.pushOldest(3);         // back at the head
    BOOST_TEST(q.pop() == 3);
    q.push(6);
    q.pushOldest(0);         // full: the oldest of all is the one dropped
    BOOST_TEST(q.dropped() == 3u);
    BOOST_TEST(q.pop() == 4);
    BOOST_TEST(q.pop() == 5);
    BOOST_TEST(q.pop() == 6);
    BOOST_TEST(q.empty());
    ReplayQueue<int> none(0);
    none.push(1);
    BOOST_TEST(none.empty());
    BOOST_TEST(none.dropped() == 1u);
}

BOOST_AUTO_TEST_CASE(fleet_bans_and_counts_are_adopted) {
    GuardPolicy policy;
    policy.banThreshold = 5;
    policy.delayBase = 1;
    policy.delayMax = 100;
    BanList bans(policy);
    const std::int64_t now = 1000;
    const IpAddress guesser = *parseIpAddress("192.0.2.7");
    // Three failures elsewhere: the next one here counts as the fourth (delay 8 s), not the first.
    bans.adoptFailures("192.0.2.7", 3, "alice", 3, now);
    auto f = bans.recordFailure(guesser, "alice", now + 1);
    BOOST_TEST(f.addressFailures == 4u);
    BOOST_TEST(f.delay == 8.0);
    bans.adoptFailures("192.0.2.7", 2, "alice", 1, now + 2);   // never lowers
    BOOST_TEST(bans.recordFailure(guesser, "alice", now + 3).banned);

    BanList other(policy);
    BOOST_TEST(other.adoptBan("192.0.2.7", now + 600, 5, now));     // new here
    BOOST_TEST(other.banRemaining(guesser, now) == 600);
    BOOST_TEST(!other.adoptBan("192.0.2.7", now + 300, 5, now));    // a shorter one changes nothing
    BOOST_TEST(other.banRemaining(guesser, now) == 600);
    BOOST_TEST(!other.adoptBan("192.0.2.7", now + 900, 5, now));    // lengthened, not new
    BOOST_TEST(other.banRemaining(guesser, now) == 900);
    BOOST_TEST(!other.adoptBan("192.0.2.8", now - 1, 5, now));      // ended already
    BOOST_TEST(other.keyFor("2001:db8:1:2::5") == "2001:db8:1:2::/64");
    BOOST_TEST(other.lift("192.0.2.7", now) == "192.0.2.7");
}

BOOST_AUTO_TEST_CASE(migration_report_read_back) {
    auto key = parseMigrationMember("a%20b 192.0.2.7 25");
    BOOST_REQUIRE(key);
    BOOST_TEST(key->user == "a b");
    BOOST_TEST(key->port == 25);
    BOOST_TEST(!parseMigrationMember("alice 192.0.2.7"));
    BOOST_TEST(!parseMigrationMember("alice 192.0.2.7 70000"));
    BOOST_TEST(!parseMigrationMember("alice 192.0.2.7 25 x"));

    auto record = parseMigrationHash(array({string("count"), string("3"), string("first"), string("100"), string("last"),
                                            string("200"), string("mech"), string("PLAIN"), string("tls"), string("TLSv1.3")}));
    BOOST_REQUIRE(record);
    BOOST_TEST(record->count == 3u);
    BOOST_TEST(record->first == 100);
    BOOST_TEST(record->last == 200);
    BOOST_TEST(record->mechanism == "PLAIN");
    BOOST_TEST(!parseMigrationHash(array({})));                               // expired meanwhile
    BOOST_TEST(!parseMigrationHash(array({string("count"), string("x")})));

    const auto ports = parsePortCounts(array({string("25"), string("7"), string("465"), string("2"), string("x"), string("1")}));
    BOOST_TEST(ports.size() == 2u);
    BOOST_TEST(ports.at(25) == 7u);

    MigrationReport report;
    report.restoreRecord(*key, *record);
    report.restoreDay(0, 25, MigrationDay{1, 3});
    report.restoreTotal(25, 3);
    BOOST_TEST(report.total() == 3u);
    BOOST_TEST(report.recordsCsv({}).find("a b,192.0.2.7,25,3,") != std::string::npos);
    BOOST_TEST(report.historyCsv({}, 0).find("1970-01-01,25,1,3") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
