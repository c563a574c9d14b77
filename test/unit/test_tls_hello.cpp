#include <boost/test/unit_test.hpp>

#include <string>

#include "tls_hello.h"

using namespace subproxy;

BOOST_AUTO_TEST_SUITE(tls_hello)

BOOST_AUTO_TEST_CASE(version_names) {
    BOOST_TEST(tlsVersionName(0x0300) == "SSLv3");
    BOOST_TEST(tlsVersionName(0x0301) == "TLSv1.0");
    BOOST_TEST(tlsVersionName(0x0302) == "TLSv1.1");
    BOOST_TEST(tlsVersionName(0x0303) == "TLSv1.2");
    BOOST_TEST(tlsVersionName(0x0304) == "TLSv1.3");
    BOOST_TEST(tlsVersionName(0x7f1c) == "0x7F1C");  // a TLS 1.3 draft
    BOOST_TEST(hex16(0xc02f) == "0xC02F");
}

BOOST_AUTO_TEST_CASE(grease_values) {
    BOOST_TEST(isGrease(0x0a0a));
    BOOST_TEST(isGrease(0xfafa));
    BOOST_TEST(!isGrease(0x0a1a));
    BOOST_TEST(!isGrease(0x0303));
    BOOST_TEST(!isGrease(0xc02f));
}

BOOST_AUTO_TEST_CASE(supported_versions_extension) {
    // A browser-like list: GREASE, TLS 1.3, TLS 1.2.
    const std::string ext("\x06\x3a\x3a\x03\x04\x03\x03", 7);
    BOOST_TEST(parseSupportedVersions(ext) == (std::vector<int>{0x0304, 0x0303}));
    BOOST_TEST(parseSupportedVersions(std::string("\x02\x03\x01", 3)) == (std::vector<int>{0x0301}));
    BOOST_TEST(parseSupportedVersions("").empty());
    BOOST_TEST(parseSupportedVersions(std::string("\x04\x03\x04", 3)).empty());      // short
    BOOST_TEST(parseSupportedVersions(std::string("\x03\x03\x04\x03", 4)).empty());  // odd length
}

BOOST_AUTO_TEST_CASE(describe_old_client) {
    ClientHelloSummary hello;
    hello.legacyVersion = 0x0301;
    hello.ciphers = {"AES128-SHA", "DES-CBC3-SHA"};
    BOOST_TEST(describeClientHello(hello) == "client offered TLSv1.0, ciphers: AES128-SHA, DES-CBC3-SHA");
    hello.ciphers.clear();
    BOOST_TEST(describeClientHello(hello) == "client offered TLSv1.0, ciphers: none");
}

BOOST_AUTO_TEST_CASE(describe_prefers_supported_versions) {
    ClientHelloSummary hello;
    hello.legacyVersion = 0x0303;  // what every TLS 1.3 client puts in legacy_version
    hello.supportedVersions = {0x0304, 0x0303};
    hello.ciphers = {"TLS_AES_128_GCM_SHA256"};
    BOOST_TEST(describeClientHello(hello) ==
               "client offered TLSv1.3/TLSv1.2, ciphers: TLS_AES_128_GCM_SHA256");
}

BOOST_AUTO_TEST_CASE(long_cipher_lists_are_cut_at_whole_names) {
    ClientHelloSummary hello;
    hello.legacyVersion = 0x0301;
    for (int i = 0; i < 500; ++i) {
        hello.ciphers.push_back("CIPHER-NUMBER-" + std::to_string(i));
    }
    const std::string out = describeClientHello(hello, 300);
    BOOST_TEST(out.size() <= 300u + std::string(", ... and 500 more").size());
    BOOST_TEST(out.find("CIPHER-NUMBER-0, CIPHER-NUMBER-1,") != std::string::npos);
    BOOST_TEST(out.find(", ... and ") != std::string::npos);
    // Whole names only: the last shown name is complete, and the count adds up.
    const std::string head = out.substr(0, out.find(", ... and "));
    const std::string last = head.substr(head.rfind(", ") + 2);
    const int lastIndex = std::stoi(last.substr(std::string("CIPHER-NUMBER-").size()));
    const int more = std::stoi(out.substr(out.find(", ... and ") + 10));
    BOOST_TEST(lastIndex + 1 + more == 500);
}

BOOST_AUTO_TEST_SUITE_END()
