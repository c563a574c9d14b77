#include <boost/test/unit_test.hpp>

#include <string>

#include "xtext.h"

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

BOOST_AUTO_TEST_SUITE_END()
