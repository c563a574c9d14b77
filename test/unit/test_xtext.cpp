#include <boost/test/unit_test.hpp>

#include <string>

#include "wire/xtext.h"

using namespace subproxy;

BOOST_AUTO_TEST_SUITE(xtext)

BOOST_AUTO_TEST_CASE(plain_text_unchanged) {
    BOOST_TEST(encodeXtext("user@example.com") == "user@example.com");
    BOOST_TEST(encodeXtext("[192.0.2.1]") == "[192.0.2.1]");
    BOOST_TEST(encodeXtext("").empty());
    BOOST_TEST(encodeXtext("!~") == "!~");
}

BOOST_AUTO_TEST_CASE(specials_escaped_upper_hex) {
    BOOST_TEST(encodeXtext("a+b=c") == "a+2Bb+3Dc");
    BOOST_TEST(encodeXtext("my host") == "my+20host");
    BOOST_TEST(encodeXtext("x\r\ny") == "x+0D+0Ay");
    BOOST_TEST(encodeXtext(std::string("\0\x7f\xff", 3)) == "+00+7F+FF");
    BOOST_TEST(encodeXtext("\xc3\xa9") == "+C3+A9");
}

BOOST_AUTO_TEST_CASE(length_without_encoding) {
    for (const char* v : {"", "abc", "a+b=c", "my host", "\xc3\xa9", "x\r\ny"}) {
        BOOST_TEST(xtextLength(v) == encodeXtext(v).size());
    }
    BOOST_TEST(xtextLength(std::string(86, '=')) == 258u);  // the HELO Postfix refused (issue 8)
}

BOOST_AUTO_TEST_CASE(prefix_fits_the_limit_in_whole_escapes) {
    // 86 '=': 85 whole escapes fit 255; the 86th would be cut to "+3" or "+" by a naive cut.
    const std::string cut = encodeXtextPrefix(std::string(86, '='), kXclientMaxValue);
    BOOST_TEST(cut.size() == 255u);
    BOOST_TEST(cut == encodeXtext(std::string(85, '=')));
    // 254 left after the 'a': 84 escapes (252), and the next escape does not fit in 2.
    const std::string mixed = encodeXtextPrefix("a" + std::string(100, '='), kXclientMaxValue);
    BOOST_TEST(mixed == "a" + encodeXtext(std::string(84, '=')));
    BOOST_TEST(mixed.size() == 253u);
    for (std::size_t limit = 0; limit < 12; ++limit) {
        const std::string p = encodeXtextPrefix("a=b+c d", limit);
        BOOST_TEST(p.size() <= limit);
        BOOST_TEST(encodeXtext("a=b+c d").compare(0, p.size(), p) == 0);  // a prefix of the whole
        BOOST_TEST((p.empty() || p.back() != '+'));
        BOOST_TEST((p.size() < 2 || p[p.size() - 2] != '+'));
    }
    // Short enough: unchanged.
    BOOST_TEST(encodeXtextPrefix("client.example", kXclientMaxValue) == "client.example");
}

BOOST_AUTO_TEST_CASE(prefix_never_splits_a_utf8_character) {
    // "\xc3\xa9" (é) is 6 octets as xtext; with 8 allowed after "ab", the é does not fit whole.
    BOOST_TEST(encodeXtextPrefix("ab\xc3\xa9", 7) == "ab");
    BOOST_TEST(encodeXtextPrefix("ab\xc3\xa9", 8) == "ab+C3+A9");
    BOOST_TEST(encodeXtextPrefix("ab\xe2\x82\xac", 10) == "ab");   // € (3 octets) cut after 2
    BOOST_TEST(encodeXtextPrefix("ab\xe2\x82\xac", 11) == "ab+E2+82+AC");
    // Not UTF-8 (a run of continuation bytes): cut where the limit falls.
    BOOST_TEST(encodeXtextPrefix(std::string(10, '\x80'), 9) == "+80+80+80");
}

BOOST_AUTO_TEST_SUITE_END()
