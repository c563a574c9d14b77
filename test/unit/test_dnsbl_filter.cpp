// DNSBL scoring, pure: filters, bitmasks, error answers, weights, threshold, templates,
// query names, the TTL cache, and the access/dnsbl configuration groups.
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <fstream>
#include <unistd.h>

#include "defence/access_list.h"
#include "ops/config.h"
#include "config_fixture.h"
#include "defence/dnsbl_filter.h"

using namespace subproxy;

namespace {
const std::string& kMinimal = testing::kMinimalConfig;

// The error for the minimal configuration plus `text`.
std::string errorOf(const std::string& text) { return testing::configError(kMinimal + text, "t.conf"); }

std::uint32_t ip(int a, int b, int c, int d) {
    return (static_cast<std::uint32_t>(a) << 24) | (b << 16) | (c << 8) | d;
}

DnsblZone zone(const std::string& name, std::vector<std::string> filters, int weight, std::uint32_t mask = 0) {
    DnsblZone z;
    z.name = name;
    z.zone = name + ".test";
    for (const auto& f : filters) {
        z.filters.push_back(*parseAnswerPattern(f, nullptr));
    }
    z.weight = weight;
    z.bitmask = mask;
    return z;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(dnsbl_filter)

BOOST_AUTO_TEST_CASE(postscreen_patterns) {
    auto p = parseAnswerPattern("127.0.0.[2..11]", nullptr);
    BOOST_REQUIRE(p);
    BOOST_TEST(p->matches(ip(127, 0, 0, 2)));
    BOOST_TEST(p->matches(ip(127, 0, 0, 11)));
    BOOST_TEST(!p->matches(ip(127, 0, 0, 12)));
    BOOST_TEST(!p->matches(ip(127, 0, 1, 2)));
    auto q = parseAnswerPattern("127.0.[0..255].[1;3;5..7]", nullptr);
    BOOST_REQUIRE(q);
    BOOST_TEST(q->matches(ip(127, 0, 200, 3)));
    BOOST_TEST(q->matches(ip(127, 0, 9, 6)));
    BOOST_TEST(!q->matches(ip(127, 0, 9, 4)));
    std::string error;
    BOOST_TEST(!parseAnswerPattern("127.0.0", &error));
    BOOST_TEST(!parseAnswerPattern("127.0.0.256", &error));
    BOOST_TEST(!parseAnswerPattern("127.0.0.[9..2]", &error));
    BOOST_TEST(!parseAnswerPattern("127.0.0.2..5", &error));
    BOOST_TEST(!parseAnswerPattern("127.0.0.[2", &error));
}

BOOST_AUTO_TEST_CASE(query_names) {
    BOOST_TEST(dnsblQueryName(*parseIpAddress("192.0.2.99"), "zen.test") == "99.2.0.192.zen.test");
    BOOST_TEST(dnsblQueryName(*parseIpAddress("::ffff:127.0.0.2"), "z") == "2.0.0.127.z");
    BOOST_TEST(dnsblQueryName(*parseIpAddress("2001:db8:1:2:3:4:567:89ab"), "z") ==
               "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.z");
}

BOOST_AUTO_TEST_CASE(zone_evaluation) {
    const DnsblZone any = zone("any", {}, 1);
    BOOST_TEST(static_cast<int>(evaluateZone(any, {}).status) == static_cast<int>(ZoneStatus::NotListed));
    BOOST_TEST(static_cast<int>(evaluateZone(any, {ip(127, 0, 0, 2)}).status) == static_cast<int>(ZoneStatus::Listed));
    // Errors, never listings: outside 127/8, and Spamhaus' 127.255.255.x.
    auto e = evaluateZone(any, {ip(127, 255, 255, 254)});
    BOOST_TEST(static_cast<int>(e.status) == static_cast<int>(ZoneStatus::Error));
    BOOST_TEST(e.detail.find("127.255.255.254") != std::string::npos);
    BOOST_TEST(static_cast<int>(evaluateZone(any, {ip(10, 0, 0, 1)}).status) == static_cast<int>(ZoneStatus::Error));
    // One bad answer spoils the set.
    BOOST_TEST(static_cast<int>(evaluateZone(any, {ip(127, 0, 0, 2), ip(8, 8, 8, 8)}).status) ==
               static_cast<int>(ZoneStatus::Error));
    const DnsblZone codes = zone("codes", {"127.0.0.2", "127.0.0.4"}, 1);
    BOOST_TEST(static_cast<int>(evaluateZone(codes, {ip(127, 0, 0, 3)}).status) == static_cast<int>(ZoneStatus::NotListed));
    BOOST_TEST(evaluateZone(codes, {ip(127, 0, 0, 3), ip(127, 0, 0, 4)}).code == ip(127, 0, 0, 4));
    // Exchange bitmask: 127.0.0.6 has bits 2 and 4.
    const DnsblZone mask = zone("mask", {}, 1, 0x04);
    BOOST_TEST(static_cast<int>(evaluateZone(mask, {ip(127, 0, 0, 6)}).status) == static_cast<int>(ZoneStatus::Listed));
    BOOST_TEST(static_cast<int>(evaluateZone(mask, {ip(127, 0, 0, 2)}).status) == static_cast<int>(ZoneStatus::NotListed));
}

BOOST_AUTO_TEST_CASE(weights_threshold_allowlist_and_reply) {
    DnsblConfig c;
    c.zones = {zone("black", {}, 2), zone("grey", {}, 1), zone("white", {}, -5)};
    c.zones[0].reply = "%0 is in %1 (%2), 100%%";
    c.threshold = 3;
    c.allowlistEnabled = true;
    c.allowlistThreshold = -1;
    const ZoneResult listed{ZoneStatus::Listed, ip(127, 0, 0, 2), {}};
    const ZoneResult none{};
    const ZoneResult error{ZoneStatus::Error, ip(127, 255, 255, 254), "x"};
    auto v = scoreDnsbl(c, {listed, none, none}, "192.0.2.1");
    BOOST_TEST(v.score == 2);
    BOOST_TEST(!v.listed);
    v = scoreDnsbl(c, {listed, listed, none}, "192.0.2.1");
    BOOST_TEST(v.score == 3);
    BOOST_TEST(v.listed);  // inclusive
    BOOST_TEST(v.reply == "192.0.2.1 is in black (black.test), 100%");
    BOOST_TEST(v.summary == "black=127.0.0.2*2 grey=127.0.0.2*1 white=-");
    v = scoreDnsbl(c, {listed, listed, listed}, "192.0.2.1");
    BOOST_TEST(v.score == -2);
    BOOST_TEST(!v.listed);
    BOOST_TEST(v.allowlisted);
    v = scoreDnsbl(c, {error, error, none}, "192.0.2.1");
    BOOST_TEST(v.score == 0);
    BOOST_TEST(v.summary == "black=error grey=error white=-");
    // The default template.
    c.zones[1].reply.clear();
    c.threshold = 1;
    v = scoreDnsbl(c, {none, listed, none}, "192.0.2.1");
    BOOST_TEST(v.reply == "Service unavailable; client [192.0.2.1] blocked using grey.test");
}

BOOST_AUTO_TEST_CASE(templates) {
    BOOST_TEST(expandDnsblTemplate("%0/%1/%2/%%", "a", "b", "c") == "a/b/c/%");
    std::string error;
    BOOST_TEST(validDnsblTemplate("blocked %0 by %1 (%2) 100%%", &error));
    BOOST_TEST(!validDnsblTemplate("blocked %s", &error));
    BOOST_TEST(!validDnsblTemplate("trailing %", &error));
}

BOOST_AUTO_TEST_CASE(cache_ttl_and_bound) {
    DnsblCache cache(2);
    cache.put("a", {ip(127, 0, 0, 2)}, 100);
    BOOST_TEST(cache.find("a", 99) != nullptr);
    BOOST_TEST(cache.find("a", 100) == nullptr);  // expired
    cache.put("b", {}, 200);
    cache.put("c", {}, 200);
    cache.find("b", 0);
    cache.put("d", {}, 200);  // evicts c, the least recently used
    BOOST_TEST(cache.size() == 2u);
    BOOST_TEST(cache.find("c", 0) == nullptr);
    BOOST_TEST(cache.find("b", 0) != nullptr);
}

BOOST_AUTO_TEST_CASE(config_groups) {
    Config c = parseConfig(kMinimal +
                               "dnsbl = { zones = ( { zone = \"Zen.Test.\"; name = \"zen\"; filter = \"127.0.0.[2..11]\"; "
                               "weight = 3; reply = \"%0 %1 %2\"; }, { zone = \"wl.test\"; filter = [ \"127.0.[0..255].2\" ]; "
                               "weight = -2; }, { zone = \"ex.test\"; bitmask = 6; } ); threshold = 3; "
                               "allowlist_threshold = -1; decision = \"connect\"; nameserver = \"127.0.0.1:5353\"; "
                               "negative_ttl = 5; };\n",
                           "t.conf");
    BOOST_REQUIRE(c.dnsbl.zones.size() == 3u);
    BOOST_TEST(c.dnsbl.zones[0].zone == "zen.test");
    BOOST_TEST(c.dnsbl.zones[0].name == "zen");
    BOOST_TEST(c.dnsbl.zones[1].name == "wl.test");
    BOOST_TEST(c.dnsbl.zones[2].bitmask == 6u);
    BOOST_TEST(c.dnsbl.threshold == 3);
    BOOST_TEST(c.dnsbl.allowlistEnabled);
    BOOST_TEST(static_cast<int>(c.dnsbl.decision) == static_cast<int>(DnsblDecision::Connect));
    BOOST_TEST(c.dnsbl.nameservers.at(0) == "127.0.0.1:5353");
    BOOST_TEST(!c.dnsbl.blockAuthenticated);
    BOOST_TEST(errorOf("dnsbl = { zones = ( { zone = \"z\"; filter = \"127.0.0.[2..]\"; } ); };")
                   .find("t.conf:3: invalid filter") == 0u);
    BOOST_TEST(errorOf("dnsbl = { reply = \"blocked %s\"; };").find("unknown placeholder") != std::string::npos);
    BOOST_TEST(errorOf("dnsbl = { nameserver = \"ns.example\"; };").find("invalid nameserver") != std::string::npos);
    BOOST_TEST(errorOf("dnsbl = { zones = ( { name = \"x\"; } ); };").find("missing required setting") != std::string::npos);
    BOOST_TEST(errorOf("dnsbl = { decision = \"rcpt\"; };").find("expected one of") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(access_lists_and_files) {
    char path[] = "/tmp/subproxy-access-XXXXXX";
    const int fd = mkstemp(path);
    BOOST_REQUIRE(fd >= 0);
    close(fd);
    {
        std::ofstream f(path);
        f << "# customers' mail servers\n198.51.100.0/24\r\n\n2001:db8::/32  # v6\n";
    }
    Config c = parseConfig(kMinimal + "access = { allow = [ \"192.0.2.7\" ]; deny = [ \"192.0.2.0/24\" ]; deny_file = \"" +
                               path + "\"; };\n",
                           "t.conf");
    BOOST_TEST(c.access.deny.size() == 3u);
    BOOST_TEST(static_cast<int>(checkAccess(c.access, *parseIpAddress("192.0.2.7"))) == static_cast<int>(AccessVerdict::Allow));
    BOOST_TEST(static_cast<int>(checkAccess(c.access, *parseIpAddress("192.0.2.8"))) == static_cast<int>(AccessVerdict::Deny));
    BOOST_TEST(static_cast<int>(checkAccess(c.access, *parseIpAddress("2001:db8::5"))) == static_cast<int>(AccessVerdict::Deny));
    BOOST_TEST(static_cast<int>(checkAccess(c.access, *parseIpAddress("203.0.113.1"))) == static_cast<int>(AccessVerdict::None));
    {
        std::ofstream f(path, std::ios::app);
        f << "not-a-cidr\n";
    }
    const std::string e = errorOf(std::string("access = { deny_file = \"") + path + "\"; };");
    BOOST_TEST(e.find(std::string(path) + ":5: not an address or CIDR block") == 0u, e);
    BOOST_TEST(errorOf("access = { deny_file = \"/nonexistent/x\"; };").find("cannot read /nonexistent/x") != std::string::npos);
    BOOST_TEST(errorOf("access = { allow = [ \"10.0.0.0/33\" ]; };").find("invalid address or CIDR block") != std::string::npos);
    unlink(path);
}

BOOST_AUTO_TEST_SUITE_END()
