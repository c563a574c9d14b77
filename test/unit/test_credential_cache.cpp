#include <boost/test/unit_test.hpp>

#include "defence/credential_cache.h"

using subproxy::CredentialCache;

BOOST_AUTO_TEST_SUITE(credential_cache)

BOOST_AUTO_TEST_CASE(hit_only_with_the_same_digest_before_expiry) {
    CredentialCache c(10);
    c.put("alice", "d1", "alice@realm", 100);
    BOOST_TEST(c.find("alice", "d1", 99).value_or("") == "alice@realm");
    BOOST_TEST(!c.find("alice", "other", 99));
    BOOST_TEST(!c.find("bob", "d1", 99));
    BOOST_TEST(!c.find("alice", "d1", 100));  // expired at its second
    BOOST_TEST(c.size() == 0u);                // and dropped
}

BOOST_AUTO_TEST_CASE(a_new_password_replaces_the_old) {
    CredentialCache c(10);
    c.put("alice", "old", "alice", 100);
    c.put("alice", "new", "alice", 100);
    BOOST_TEST(c.size() == 1u);
    BOOST_TEST(!c.find("alice", "old", 1));
    BOOST_TEST(c.find("alice", "new", 1).has_value());
}

BOOST_AUTO_TEST_CASE(least_recently_used_goes_first_and_zero_keeps_nothing) {
    CredentialCache c(2);
    c.put("a", "d", "a", 100);
    c.put("b", "d", "b", 100);
    BOOST_TEST(c.find("a", "d", 1).has_value());  // a is now the most recent
    c.put("c", "d", "c", 100);
    BOOST_TEST(c.find("a", "d", 1).has_value());
    BOOST_TEST(!c.find("b", "d", 1));
    c.setMax(0);
    BOOST_TEST(c.size() == 0u);
    c.put("d", "d", "d", 100);
    BOOST_TEST(c.size() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
