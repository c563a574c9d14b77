#include <boost/test/unit_test.hpp>

#include <string>

#include "wire/tls_hello.h"

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

// Names as tls.cpp gets them from OpenSSL; the test's own table.
std::string nameOf(int suite) {
    switch (suite) {
    case 0x002f:
        return "AES128-SHA";
    case 0x000a:
        return "DES-CBC3-SHA";
    case 0x1301:
        return "TLS_AES_128_GCM_SHA256";
    default:
        return hex16(suite);
    }
}

BOOST_AUTO_TEST_CASE(describe_old_client) {
    ClientHelloSummary hello;
    hello.legacyVersion = 0x0301;
    hello.cipherSuites = {0x002f, 0x000a, 0x1234};
    BOOST_TEST(describeClientHello(hello, nameOf) ==
               "client offered TLSv1.0, ciphers: AES128-SHA, DES-CBC3-SHA, 0x1234");
    hello.cipherSuites.clear();
    BOOST_TEST(describeClientHello(hello, nameOf) == "client offered TLSv1.0, ciphers: none");
}

BOOST_AUTO_TEST_CASE(describe_prefers_supported_versions) {
    ClientHelloSummary hello;
    hello.legacyVersion = 0x0303;  // what every TLS 1.3 client puts in legacy_version
    hello.supportedVersions = {0x0304, 0x0303};
    hello.cipherSuites = {0x1301};
    BOOST_TEST(describeClientHello(hello, nameOf) ==
               "client offered TLSv1.3/TLSv1.2, ciphers: TLS_AES_128_GCM_SHA256");
}

BOOST_AUTO_TEST_CASE(long_cipher_lists_are_cut_at_whole_names_and_counted) {
    ClientHelloSummary hello;
    hello.legacyVersion = 0x0301;
    for (int i = 0; i < 16000; ++i) {  // a hostile hello: 32 000 bytes of suites
        hello.cipherSuites.push_back(i);
    }
    int asked = 0;
    const auto name = [&asked](int suite) {
        ++asked;
        return "CIPHER-NUMBER-" + std::to_string(suite);
    };
    const std::string out = describeClientHello(hello, name, 300);
    BOOST_TEST(out.size() <= 300u + std::string(", ... and 16000 more").size());
    BOOST_TEST(out.rfind("client offered TLSv1.0, ciphers: CIPHER-NUMBER-0, CIPHER-NUMBER-1, ", 0) == 0u);
    // Whole names only, and the count adds up.
    const std::size_t cut = out.find(", ... and ");
    BOOST_REQUIRE(cut != std::string::npos);
    const std::string head = out.substr(0, cut);
    const int lastShown = std::stoi(head.substr(head.rfind("CIPHER-NUMBER-") + 14));
    const int more = std::stoi(out.substr(cut + 10));
    BOOST_TEST(out.substr(out.size() - 5) == " more");
    BOOST_TEST(lastShown + 1 + more == 16000);
    // Names were looked up only for what was shown (and the one that did not fit).
    BOOST_TEST(asked == lastShown + 2);
}

BOOST_AUTO_TEST_SUITE_END()
