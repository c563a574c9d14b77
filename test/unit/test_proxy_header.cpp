#include <boost/test/unit_test.hpp>

#include <string>

#include "wire/proxy_header.h"

using namespace subproxy;
using Status = ProxyParse::Status;

namespace {

std::string v2(unsigned char verCmd, unsigned char family, const std::string& block) {
    std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
    h += static_cast<char>(verCmd);
    h += static_cast<char>(family);
    h += static_cast<char>(block.size() >> 8);
    h += static_cast<char>(block.size() & 0xFF);
    return h + block;
}

// 192.0.2.7:40000 -> 198.51.100.1:25
std::string inet4Block() { return std::string("\xC0\x00\x02\x07\xC6\x33\x64\x01\x9C\x40\x00\x19", 12); }

}  // namespace

BOOST_AUTO_TEST_SUITE(proxy_header)

BOOST_AUTO_TEST_CASE(v1_tcp4_and_what_follows) {
    const std::string line = "PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\n";
    const auto p = parseProxyHeader(line + "EHLO x\r\n");
    BOOST_REQUIRE(p.status == Status::Done);
    BOOST_TEST(p.length == line.size());  // the customer's bytes after it are not consumed
    BOOST_TEST(p.header.version == 1);
    BOOST_TEST(!p.header.local);
    BOOST_TEST(formatIpAddress(p.header.source) == "192.0.2.7");
    BOOST_TEST(p.header.sourcePort == 40000);
    BOOST_TEST(formatIpAddress(p.header.destination) == "198.51.100.1");
    BOOST_TEST(p.header.destinationPort == 25);
}

BOOST_AUTO_TEST_CASE(v1_tcp6_and_mapped_v4) {
    auto p = parseProxyHeader("PROXY TCP6 2001:DB8::7 2001:db8::1 1 587\r\n");
    BOOST_REQUIRE(p.status == Status::Done);
    BOOST_TEST(formatIpAddress(p.header.source) == "2001:db8::7");
    BOOST_TEST(p.header.destinationPort == 587);
    p = parseProxyHeader("PROXY TCP6 ::ffff:192.0.2.7 ::ffff:198.51.100.1 1 25\r\n");
    BOOST_REQUIRE(p.status == Status::Done);
    BOOST_TEST(!p.header.source.v6);
    BOOST_TEST(formatIpAddress(p.header.source) == "192.0.2.7");
}

BOOST_AUTO_TEST_CASE(v1_split_anywhere_needs_more) {
    const std::string line = "PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\n";
    for (std::size_t n = 1; n < line.size(); ++n) {
        BOOST_TEST((parseProxyHeader(line.substr(0, n)).status == Status::NeedMore), "prefix " << n);
    }
}

BOOST_AUTO_TEST_CASE(v1_refusals) {
    const char* bad[] = {
        "PROXY UNKNOWN\r\n",                                   // no customer address
        "PROXY UNKNOWN 192.0.2.7 198.51.100.1 1 2\r\n",
        "PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\n",       // bare LF
        "PROXY TCP4 192.0.2.7 198.51.100.1 40000\r\n",        // a field missing
        "PROXY TCP4 192.0.2.7  198.51.100.1 40000 25\r\n",    // two spaces
        "PROXY TCP4 2001:db8::7 198.51.100.1 40000 25\r\n",   // family mismatch
        "PROXY TCP6 192.0.2.7 198.51.100.1 40000 25\r\n",
        "PROXY TCP4 192.0.2.7 198.51.100.1 65536 25\r\n",     // port range
        "PROXY TCP4 192.0.2.7 198.51.100.1 -1 25\r\n",
        "PROXY TCP4 192.0.2.256 198.51.100.1 1 25\r\n",
        "PROXY TCP6 [2001:db8::7] 2001:db8::1 1 25\r\n",      // brackets
        "PROXY TCP6 fe80::1%eth0 2001:db8::1 1 25\r\n",       // zone
        "PROXY UDP4 192.0.2.7 198.51.100.1 1 25\r\n",
        "proxy TCP4 192.0.2.7 198.51.100.1 1 25\r\n",         // case matters
        "EHLO client.example\r\n",                            // SMTP, not a header
        "\x16\x03\x01\x02\x00\x01",                            // a TLS ClientHello
    };
    for (const char* b : bad) {
        const auto p = parseProxyHeader(b);
        BOOST_TEST((p.status == Status::Invalid), b);
        BOOST_TEST(!p.error.empty());
    }
    // Not a prefix of either signature: refused on the first byte, no waiting.
    BOOST_TEST((parseProxyHeader("E").status == Status::Invalid));
    BOOST_TEST((parseProxyHeader("PROXX").status == Status::Invalid));
    BOOST_TEST((parseProxyHeader(std::string_view("\r\n\r\n\0\r\nQUIX", 12)).status == Status::Invalid));
    BOOST_TEST((parseProxyHeader(std::string_view("\r\n\r\n\0\r\nQU", 9)).status == Status::NeedMore));
}

BOOST_AUTO_TEST_CASE(v1_bounded_to_107_bytes) {
    const std::string longLine = "PROXY TCP6 " + std::string(200, '1');
    BOOST_TEST((parseProxyHeader(longLine.substr(0, 106)).status == Status::NeedMore));
    BOOST_TEST((parseProxyHeader(longLine.substr(0, 107)).status == Status::Invalid));
    // The longest legal line (spec 2.1) fits.
    const std::string full = "PROXY TCP6 1111:2222:3333:4444:5555:6666:7777:8888 "
                             "1111:2222:3333:4444:5555:6666:7777:8888 65535 65535\r\n";
    BOOST_TEST(full.size() <= 107u);
    BOOST_TEST((parseProxyHeader(full).status == Status::Done));
}

BOOST_AUTO_TEST_CASE(v2_proxy_tcp4_with_tlvs) {
    const std::string tlv("\x04\x00\x02\x00\x00", 5);  // PP2_TYPE_NOOP, skipped
    const std::string h = v2(0x21, 0x11, inet4Block() + tlv);
    const auto p = parseProxyHeader(h + "\x16\x03\x01");  // implicit TLS right behind it
    BOOST_REQUIRE(p.status == Status::Done);
    BOOST_TEST(p.length == h.size());
    BOOST_TEST(p.header.version == 2);
    BOOST_TEST(formatIpAddress(p.header.source) == "192.0.2.7");
    BOOST_TEST(p.header.sourcePort == 40000);
    BOOST_TEST(formatIpAddress(p.header.destination) == "198.51.100.1");
    BOOST_TEST(p.header.destinationPort == 25);
    for (std::size_t n = 1; n < h.size(); ++n) {
        BOOST_TEST((parseProxyHeader(h.substr(0, n)).status == Status::NeedMore), "prefix " << n);
    }
}

BOOST_AUTO_TEST_CASE(v2_local_is_a_health_check) {
    const auto p = parseProxyHeader(v2(0x20, 0x00, ""));
    BOOST_REQUIRE(p.status == Status::Done);
    BOOST_TEST(p.header.local);
    BOOST_TEST(p.length == 16u);
    // LOCAL with an address block: the block is skipped, not used.
    const auto q = parseProxyHeader(v2(0x20, 0x11, inet4Block()));
    BOOST_REQUIRE(q.status == Status::Done);
    BOOST_TEST(q.header.local);
    BOOST_TEST(q.length == 28u);
}

BOOST_AUTO_TEST_CASE(v2_refusals) {
    BOOST_TEST((parseProxyHeader(v2(0x11, 0x11, inet4Block())).status == Status::Invalid));  // version 1 bits
    BOOST_TEST((parseProxyHeader(v2(0x22, 0x11, inet4Block())).status == Status::Invalid));  // command 2
    BOOST_TEST((parseProxyHeader(v2(0x21, 0x00, "")).status == Status::Invalid));            // UNSPEC
    BOOST_TEST((parseProxyHeader(v2(0x21, 0x12, inet4Block())).status == Status::Invalid));  // UDP
    BOOST_TEST((parseProxyHeader(v2(0x21, 0x31, std::string(216, 'x'))).status == Status::Invalid));  // UNIX
    BOOST_TEST((parseProxyHeader(v2(0x21, 0x11, inet4Block().substr(0, 11))).status == Status::Invalid));
    BOOST_TEST((parseProxyHeader(v2(0x21, 0x21, inet4Block())).status == Status::Invalid));  // short v6 block
    // Size bound: a length that would pass 536 bytes is refused before it arrives.
    std::string big = v2(0x21, 0x11, inet4Block() + std::string(600, '\0'));
    BOOST_TEST((parseProxyHeader(big.substr(0, 16)).status == Status::Invalid));
    const std::string fits = v2(0x21, 0x11, inet4Block() + std::string(536 - 16 - 12, '\0'));
    BOOST_TEST((parseProxyHeader(fits).status == Status::Done));
}

BOOST_AUTO_TEST_CASE(build_v2_round_trips) {
    ProxyHeader h;
    h.source = *parseIpAddress("2001:db8::7");
    h.sourcePort = 51234;
    h.destination = *parseIpAddress("2001:db8::1");
    h.destinationPort = 25;
    auto p = parseProxyHeader(buildProxyHeaderV2(h));
    BOOST_REQUIRE(p.status == Status::Done);
    BOOST_TEST(p.length == 16u + 36u);
    BOOST_TEST((p.header.source == h.source));
    BOOST_TEST(p.header.sourcePort == 51234);
    BOOST_TEST((p.header.destination == h.destination));
    BOOST_TEST(p.header.destinationPort == 25);

    h.source = *parseIpAddress("192.0.2.7");  // the dialled address stays IPv6: unspecified
    p = parseProxyHeader(buildProxyHeaderV2(h));
    BOOST_REQUIRE(p.status == Status::Done);
    BOOST_TEST(formatIpAddress(p.header.source) == "192.0.2.7");
    BOOST_TEST(formatIpAddress(p.header.destination) == "0.0.0.0");
    BOOST_TEST(p.header.destinationPort == 0);

    ProxyHeader local;
    local.local = true;
    p = parseProxyHeader(buildProxyHeaderV2(local));
    BOOST_REQUIRE(p.status == Status::Done);
    BOOST_TEST(p.header.local);
}

BOOST_AUTO_TEST_SUITE_END()
