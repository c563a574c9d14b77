#include <boost/test/unit_test.hpp>

#include <string>

#include "wire/base64.h"
#include "wire/sasl_payload.h"

using namespace subproxy;

namespace {
std::string nul(const char* s, std::size_t n) { return std::string(s, n); }
}  // namespace

BOOST_AUTO_TEST_SUITE(sasl_payload)

BOOST_AUTO_TEST_CASE(split_plain_gives_fields_unchecked) {
    auto c = splitPlain(nul("al\x01ice\0bob\0", 11));
    BOOST_REQUIRE(c.has_value());
    BOOST_TEST(c->authzid == "al\x01ice");
    BOOST_TEST(c->authcid == "bob");
    BOOST_TEST(c->password == "");
    BOOST_TEST(splitPlain(std::string(1, '\0') + std::string(300, 'u') + '\0' + "p")->authcid.size() == 300u);
    BOOST_TEST(!splitPlain("user").has_value());
    BOOST_TEST(!splitPlain(nul("\0u\0p\0", 5)).has_value());
}

BOOST_AUTO_TEST_CASE(build_plain) {
    BOOST_TEST(buildPlain("u", "p") == nul("\0u\0p", 4));
    BOOST_TEST(encodeBase64(buildPlain("user", "pass")) == "AHVzZXIAcGFzcw==");
}

BOOST_AUTO_TEST_CASE(parse_valid) {
    auto c = parsePlain(nul("\0user\0pass", 10));
    BOOST_REQUIRE(c.has_value());
    BOOST_TEST(c->authzid == "");
    BOOST_TEST(c->authcid == "user");
    BOOST_TEST(c->password == "pass");

    c = parsePlain(nul("admin\0user\0p w", 14));
    BOOST_REQUIRE(c.has_value());
    BOOST_TEST(c->authzid == "admin");  // returned as is; the caller refuses it
    BOOST_TEST(c->authcid == "user");
    BOOST_TEST(c->password == "p w");

    c = parsePlain(std::string("\0j\xc3\xbcrgen\0\xe2\x82\xac\xf0\x9f\x98\x80", 16));
    BOOST_REQUIRE(c.has_value());
    BOOST_TEST(c->authcid == "j\xc3\xbcrgen");
}

BOOST_AUTO_TEST_CASE(field_length_limit) {
    const std::string max(255, 'a');
    BOOST_TEST(parsePlain(max + '\0' + max + '\0' + max).has_value());
    BOOST_TEST(!parsePlain('\0' + std::string(256, 'a') + '\0' + "p").has_value());
    BOOST_TEST(!parsePlain(std::string(1, '\0') + "u" + '\0' + std::string(256, 'p')).has_value());
    BOOST_TEST(!parsePlain(std::string(256, 'z') + '\0' + "u" + '\0' + "p").has_value());
}

BOOST_AUTO_TEST_CASE(rejects_wrong_nul_count_and_empty_fields) {
    BOOST_TEST(!parsePlain("").has_value());
    BOOST_TEST(!parsePlain("userpass").has_value());
    BOOST_TEST(!parsePlain(nul("user\0pass", 9)).has_value());
    BOOST_TEST(!parsePlain(nul("\0u\0p\0", 5)).has_value());
    BOOST_TEST(!parsePlain(nul("\0u\0p\0x", 6)).has_value());
    BOOST_TEST(!parsePlain(nul("\0\0p", 3)).has_value());
    BOOST_TEST(!parsePlain(nul("\0u\0", 3)).has_value());
    BOOST_TEST(!parsePlain(nul("\0\0", 2)).has_value());
}

BOOST_AUTO_TEST_CASE(rejects_bad_utf8) {
    const char* bad[] = {
        "\xff", "\xc3", "\xc3\x28", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xed\xa0\x80",
        "\xf0\x80\x80\xaf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\x80", "\xe2\x82",
    };
    for (const char* b : bad) {
        BOOST_TEST(!parsePlain(std::string(1, '\0') + "u" + b + '\0' + "p").has_value());
        BOOST_TEST(!parsePlain(std::string(1, '\0') + "u" + '\0' + "p" + b).has_value());
        BOOST_TEST(!parsePlain(std::string(b) + '\0' + "u" + '\0' + "p").has_value());
    }
    BOOST_TEST(parsePlain(std::string(1, '\0') + "u\xed\x9f\xbf" + '\0' + "p").has_value());
    BOOST_TEST(parsePlain(std::string(1, '\0') + "u\xf4\x8f\xbf\xbf" + '\0' + "p").has_value());
}

BOOST_AUTO_TEST_SUITE_END()
