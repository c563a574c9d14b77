#include <boost/test/unit_test.hpp>

#include <string>

#include "wire/host_name.h"

using namespace subproxy;

BOOST_AUTO_TEST_SUITE(host_name)

BOOST_AUTO_TEST_CASE(valid_names) {
    BOOST_TEST(validHostName("customer.test"));
    BOOST_TEST(validHostName("dsl-192-0-2-7.pool.isp.example."));
    BOOST_TEST(validHostName("_spf.example"));
    BOOST_TEST(validHostName("localhost"));
    BOOST_TEST(validHostName("1-2-3-4.example"));
    BOOST_TEST(validHostName(std::string(63, 'a') + ".example"));
}

BOOST_AUTO_TEST_CASE(invalid_names) {
    BOOST_TEST(!validHostName(""));
    BOOST_TEST(!validHostName("."));
    BOOST_TEST(!validHostName("a..b"));
    BOOST_TEST(!validHostName(".a"));
    BOOST_TEST(!validHostName("-a.example"));
    BOOST_TEST(!validHostName("a-.example"));
    BOOST_TEST(!validHostName("a b.example"));
    BOOST_TEST(!validHostName("a\r\nb.example"));
    BOOST_TEST(!validHostName("[127.0.0.1]"));
    BOOST_TEST(!validHostName("192.0.2.7"));   // would pose as an address
    BOOST_TEST(!validHostName("192.0.2.7."));
    BOOST_TEST(!validHostName(std::string(64, 'a') + ".example"));
    std::string longName;
    while (longName.size() < 260) {
        longName += "abcdefghi.";
    }
    BOOST_TEST(!validHostName(longName));
}

BOOST_AUTO_TEST_CASE(canonical) {
    BOOST_TEST(canonicalHostName("Customer.TEST.") == "customer.test");
    BOOST_TEST(canonicalHostName("a.b") == "a.b");
}

BOOST_AUTO_TEST_SUITE_END()
