#include <boost/test/unit_test.hpp>

#include <random>
#include <string>

#include "wire/base64.h"
#include "wire/text_util.h"
#include "wire/xtext.h"

using namespace subproxy;

BOOST_AUTO_TEST_SUITE(base64)

BOOST_AUTO_TEST_CASE(rfc4648_vectors) {
    const std::pair<std::string, std::string> vectors[] = {
        {"", ""},           {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
    };
    for (const auto& [plain, encoded] : vectors) {
        BOOST_TEST(encodeBase64(plain) == encoded);
        const auto decoded = decodeBase64(encoded);
        BOOST_REQUIRE(decoded.has_value());
        BOOST_TEST(*decoded == plain);
    }
}

BOOST_AUTO_TEST_CASE(binary_round_trip) {
    std::string all;
    for (int i = 0; i < 256; ++i) {
        all.push_back(static_cast<char>(i));
    }
    const auto decoded = decodeBase64(encodeBase64(all));
    BOOST_REQUIRE(decoded.has_value());
    BOOST_TEST(*decoded == all);
    BOOST_TEST(*decodeBase64("AHVzZXIAcGFzcw==") == std::string("\0user\0pass", 10));
}

BOOST_AUTO_TEST_CASE(rejects_malformed) {
    for (const char* bad : {"=AAA", "AAA=BBBB", "AA=A", "Zg=", "Zg", "Z", "Zg===", "====",
                            "Zm9v YmFy", " Zm9v", "Zm9v\r\n", "Zm9v\n", "Zm9v\t", "Zm9v*AAA",
                            "Zm-v", "Zm_v", "Zg==Zg==", "Z===", "*", "Zm9vYg=\x01"}) {
        BOOST_TEST_INFO("input: " << printable(bad));
        BOOST_TEST(!decodeBase64(bad).has_value());
    }
    BOOST_TEST(!decodeBase64(std::string("Zm9v\0AAA", 8)).has_value());
}

BOOST_AUTO_TEST_CASE(rejects_non_canonical_trailing_bits) {
    BOOST_TEST(decodeBase64("Zg==").has_value());
    BOOST_TEST(!decodeBase64("Zh==").has_value());
    BOOST_TEST(!decodeBase64("Zm9=").has_value());
    BOOST_TEST(decodeBase64("Zm8=").has_value());
}

BOOST_AUTO_TEST_CASE(fixed_seed_garbage_never_crashes_and_round_trips_when_accepted) {
    std::mt19937 rng(4242);
    const std::string alphabet = "ABCxyz019+/= \r\n*";
    int accepted = 0;
    for (int n = 0; n < 20000; ++n) {
        std::string input;
        const int len = static_cast<int>(rng() % 12);
        for (int i = 0; i < len; ++i) {
            input.push_back(alphabet[rng() % alphabet.size()]);
        }
        const auto decoded = decodeBase64(input);
        if (decoded) {
            ++accepted;
            BOOST_REQUIRE(encodeBase64(*decoded) == input);  // only canonical forms pass
        }
    }
    BOOST_TEST(accepted > 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(text_util)

BOOST_AUTO_TEST_CASE(printable_replaces_and_cuts) {
    BOOST_TEST(printable("a\r\nb\x7f\x80\tc") == "a??b???c");
    BOOST_TEST(printable(std::string(300, 'x')).size() == 100u);
    BOOST_TEST(printable("abcdef", 3) == "abc");
    BOOST_TEST(printable(std::string("a\0b", 3)) == "a?b");
}

BOOST_AUTO_TEST_CASE(case_and_trim) {
    BOOST_TEST(iequals("StartTLS", "STARTTLS"));
    BOOST_TEST(!iequals("STARTTLS", "STARTTL"));
    BOOST_TEST(!iequals("\xe9", "\xc9"));  // ASCII only
    BOOST_TEST(toUpper("mail from:<a@b>") == "MAIL FROM:<A@B>");
    BOOST_TEST(trimSpaces(" \t a b \t ") == "a b");
    BOOST_TEST(trimSpaces("   ").empty());
}

BOOST_AUTO_TEST_CASE(join_words) {
    BOOST_TEST(join({"PLAIN", "LOGIN", "CRAM-MD5"}, " ") == "PLAIN LOGIN CRAM-MD5");
    BOOST_TEST(join({"a"}, ", ") == "a");
    BOOST_TEST(join({}, ", ") == "");
    BOOST_TEST(join({"", "b"}, "/") == "/b");
}

BOOST_AUTO_TEST_SUITE_END()
