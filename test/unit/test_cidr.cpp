#include <boost/test/unit_test.hpp>

#include "wire/cidr.h"

using namespace subproxy;

BOOST_AUTO_TEST_SUITE(cidr)

BOOST_AUTO_TEST_CASE(parse_and_format_addresses) {
    BOOST_TEST(formatIpAddress(*parseIpAddress("192.0.2.1")) == "192.0.2.1");
    BOOST_TEST(formatIpAddress(*parseIpAddress("2001:DB8:0:0::1")) == "2001:db8::1");
    BOOST_TEST(formatIpAddress(*parseIpAddress("[2001:db8::1]")) == "2001:db8::1");
    BOOST_TEST(formatIpAddress(*parseIpAddress("fe80::1%eth0")) == "fe80::1");
    BOOST_TEST(!parseIpAddress(""));
    BOOST_TEST(!parseIpAddress("192.0.2"));
    BOOST_TEST(!parseIpAddress("192.0.2.256"));
    BOOST_TEST(!parseIpAddress("example.com"));
    BOOST_TEST(!parseIpAddress("2001:db8::1::2"));
}

BOOST_AUTO_TEST_CASE(v4_mapped_normalised) {
    auto a = parseIpAddress("::ffff:192.0.2.1");
    BOOST_REQUIRE(a);
    BOOST_TEST(!a->v6);
    BOOST_TEST((*a == *parseIpAddress("192.0.2.1")));
    BOOST_TEST(formatIpAddress(*a) == "192.0.2.1");
    auto c = parseCidr("::ffff:192.0.2.0/120");
    BOOST_REQUIRE(c);
    BOOST_TEST(c->str() == "192.0.2.0/24");
    BOOST_TEST(!parseCidr("::ffff:192.0.2.0/64"));
}

BOOST_AUTO_TEST_CASE(cidr_match) {
    auto c = parseCidr("192.0.2.0/24");
    BOOST_REQUIRE(c);
    BOOST_TEST(c->contains(*parseIpAddress("192.0.2.200")));
    BOOST_TEST(c->contains(*parseIpAddress("::ffff:192.0.2.7")));
    BOOST_TEST(!c->contains(*parseIpAddress("192.0.3.1")));
    BOOST_TEST(!c->contains(*parseIpAddress("2001:db8::1")));
    auto d = parseCidr("2001:db8::/32");
    BOOST_REQUIRE(d);
    BOOST_TEST(d->contains(*parseIpAddress("2001:db8:ffff::1")));
    BOOST_TEST(!d->contains(*parseIpAddress("2001:db9::1")));
    BOOST_TEST(!d->contains(*parseIpAddress("192.0.2.1")));
    auto odd = parseCidr("10.0.0.0/9");
    BOOST_TEST(odd->contains(*parseIpAddress("10.127.255.255")));
    BOOST_TEST(!odd->contains(*parseIpAddress("10.128.0.0")));
    BOOST_TEST(parseCidr("0.0.0.0/0")->contains(*parseIpAddress("203.0.113.9")));
    BOOST_TEST(parseCidr("::/0")->contains(*parseIpAddress("::1")));
}

BOOST_AUTO_TEST_CASE(bare_address_and_host_bits) {
    BOOST_TEST(parseCidr("192.0.2.1")->str() == "192.0.2.1/32");
    BOOST_TEST(parseCidr("::1")->str() == "::1/128");
    bool hostBits = false;
    auto c = parseCidr("192.0.2.7/24", &hostBits);
    BOOST_TEST(hostBits);
    BOOST_TEST(c->str() == "192.0.2.0/24");
    parseCidr("192.0.2.0/24", &hostBits);
    BOOST_TEST(!hostBits);
    BOOST_TEST(!parseCidr("192.0.2.0/33"));
    BOOST_TEST(!parseCidr("2001:db8::/129"));
    BOOST_TEST(!parseCidr("192.0.2.0/"));
    BOOST_TEST(!parseCidr("192.0.2.0/2x"));
    BOOST_TEST(!parseCidr("nonsense/8"));
}

BOOST_AUTO_TEST_CASE(mask_groups_v6_by_prefix) {
    auto a = *parseIpAddress("2001:db8:1:2:aaaa:bbbb:cccc:dddd");
    BOOST_TEST(formatIpAddress(maskIpAddress(a, 64)) == "2001:db8:1:2::");
    BOOST_TEST(formatIpAddress(maskIpAddress(a, 56)) == "2001:db8:1::");
    BOOST_TEST(formatIpAddress(maskIpAddress(a, 128)) == "2001:db8:1:2:aaaa:bbbb:cccc:dddd");
    BOOST_TEST(formatIpAddress(maskIpAddress(*parseIpAddress("192.0.2.77"), 32)) == "192.0.2.77");
}

BOOST_AUTO_TEST_CASE(list) {
    CidrList l;
    BOOST_TEST(l.empty());
    BOOST_TEST(l.add("10.0.0.0/8"));
    BOOST_TEST(l.add("2001:db8::/48"));
    BOOST_TEST(!l.add("bogus"));
    BOOST_TEST(l.size() == 2u);
    BOOST_TEST(l.contains("10.1.2.3"));
    BOOST_TEST(l.contains("::ffff:10.1.2.3"));
    BOOST_TEST(l.contains("2001:db8:0:5::1"));
    BOOST_TEST(!l.contains("2001:db8:1::1"));
    BOOST_TEST(!l.contains("garbage"));
    BOOST_TEST(l.find(*parseIpAddress("10.9.9.9"))->str() == "10.0.0.0/8");
}

BOOST_AUTO_TEST_CASE(client_key_groups_ipv6_by_prefix) {
    // Bans and the fan-out signal count an IPv6 customer per prefix, an IPv4 one per address.
    BOOST_TEST(clientKey(*parseIpAddress("2001:db8:1:2:aaaa::1"), 64) == "2001:db8:1:2::/64");
    BOOST_TEST(clientKey(*parseIpAddress("2001:db8:1:2:bbbb::9"), 64) == "2001:db8:1:2::/64");
    BOOST_TEST(clientKey(*parseIpAddress("2001:db8:1:2:bbbb::9"), 128) == "2001:db8:1:2:bbbb::9");
    BOOST_TEST(clientKey(*parseIpAddress("::ffff:192.0.2.7"), 64) == "192.0.2.7");
}

BOOST_AUTO_TEST_SUITE_END()
