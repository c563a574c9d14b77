// identity.h: the checks on names typed at AUTH and the one spelling of an account (issue 8
// items 5 and 6).
#include <boost/test/unit_test.hpp>

#include <string>

#include "ops/config.h"
#include "wire/identity.h"

using namespace subproxy;

BOOST_AUTO_TEST_SUITE(identity)

BOOST_AUTO_TEST_CASE(default_realm_is_sasl_realm_or_hostname) {
    Config c;
    c.hostname = "proxy.test";
    BOOST_TEST(defaultRealm(c) == "proxy.test");
    c.auth.saslRealm = "isp.example";
    BOOST_TEST(defaultRealm(c) == "isp.example");
}

BOOST_AUTO_TEST_CASE(control_characters_refused_in_every_position) {
    for (const std::string& bad : {std::string("alice\0x", 7), std::string("\0alice", 6), std::string("alice\0", 6),
                                  std::string("ali\rce"), std::string("alice\n"), std::string("\talice"),
                                  std::string("alice\x1b[0m"), std::string("alice\x7f")}) {
        BOOST_TEST((checkUserName(bad, "proxy.test", false) == NameCheck::ControlCharacters));
        BOOST_TEST((checkUserName(bad, "proxy.test", true) == NameCheck::ControlCharacters));
        BOOST_TEST((checkAuthzid(bad) == NameCheck::ControlCharacters));
    }
    // Spaces, 8-bit text and the realm separator are not controls.
    for (const char* good : {"alice", " alice ", "alice smith", "j\xc3\xbcrgen", "alice@proxy.test", ""}) {
        BOOST_TEST((checkUserName(good, "proxy.test", true) == NameCheck::Ok));
        BOOST_TEST((checkAuthzid(good) == NameCheck::Ok));
    }
}

BOOST_AUTO_TEST_CASE(length_limit_in_octets_and_for_xclient_after_encoding) {
    BOOST_TEST((checkUserName(std::string(255, 'a'), "r", false) == NameCheck::Ok));
    BOOST_TEST((checkUserName(std::string(255, 'a'), "r", true) == NameCheck::Ok));
    BOOST_TEST((checkUserName(std::string(256, 'a'), "r", false) == NameCheck::TooLong));
    // 86 '=' are 258 octets as xtext: too long for XCLIENT LOGIN, fine to replay or relay.
    BOOST_TEST((checkUserName(std::string(85, '='), "r", true) == NameCheck::Ok));
    BOOST_TEST((checkUserName(std::string(86, '='), "r", true) == NameCheck::TooLong));
    BOOST_TEST((checkUserName(std::string(86, '='), "r", false) == NameCheck::Ok));
    // What is sent is the canonical name: the default realm does not count.
    const std::string name = std::string(250, 'a') + "@proxy.test";
    BOOST_TEST((checkUserName(name, "proxy.test", true) == NameCheck::TooLong));  // 261 octets typed
    BOOST_TEST((checkUserName(std::string(240, 'a') + "@proxy.test", "proxy.test", true) == NameCheck::Ok));
    BOOST_TEST((checkUserName(std::string(240, 'a') + "@other.example", "proxy.test", true) == NameCheck::Ok));
    BOOST_TEST((checkUserName(std::string(245, 'a') + "@other.example", "proxy.test", true) == NameCheck::TooLong));
}

BOOST_AUTO_TEST_CASE(canonical_user_strips_blanks_and_the_default_realm_only) {
    BOOST_TEST(canonicalUser("alice", "proxy.test") == "alice");
    BOOST_TEST(canonicalUser("  alice ", "proxy.test") == "alice");
    BOOST_TEST(canonicalUser("alice@proxy.test", "proxy.test") == "alice");
    BOOST_TEST(canonicalUser("alice@PROXY.Test", "proxy.test") == "alice");
    BOOST_TEST(canonicalUser(" alice@proxy.test ", "proxy.test") == "alice");
    BOOST_TEST(canonicalUser("Alice", "proxy.test") == "Alice");  // sasldb tells them apart
    BOOST_TEST(canonicalUser("alice@other.example", "proxy.test") == "alice@other.example");
    BOOST_TEST(canonicalUser("alice@proxy.test.evil", "proxy.test") == "alice@proxy.test.evil");
    // Cyrus' realm starts at the first '@': this is user "alice" in realm "x@proxy.test".
    BOOST_TEST(canonicalUser("alice@x@proxy.test", "proxy.test") == "alice@x@proxy.test");
    BOOST_TEST(canonicalUser("alice@", "proxy.test") == "alice@");
    BOOST_TEST(canonicalUser("alice@proxy.test", "") == "alice@proxy.test");
    BOOST_TEST(canonicalUser("", "proxy.test") == "");
}

BOOST_AUTO_TEST_CASE(user_key_merges_every_spelling_of_one_account) {
    const std::string key = userKey("alice", "proxy.test");
    BOOST_TEST(key == "alice");
    for (const char* spelling : {"ALICE", " alice", "alice ", "Alice@Proxy.Test", "alice@proxy.test"}) {
        BOOST_TEST(userKey(spelling, "proxy.test") == key);
    }
    BOOST_TEST(userKey("alice@other.example", "proxy.test") != key);
    BOOST_TEST(userKey("bob", "proxy.test") != key);
}

BOOST_AUTO_TEST_SUITE_END()
