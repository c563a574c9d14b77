#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "wire/ehlo_caps.h"

using namespace subproxy;
using Lines = std::vector<std::string>;

BOOST_AUTO_TEST_SUITE(ehlo_caps)

BOOST_AUTO_TEST_CASE(parse_skips_greeting) {
    EhloCaps caps = parseEhloCaps({"msa.example Hello", "PIPELINING", "SIZE 1000", "auth PLAIN"});
    BOOST_TEST(caps.keywords == (Lines{"PIPELINING", "SIZE 1000", "auth PLAIN"}));
    BOOST_TEST(caps.has("pipelining"));
    BOOST_TEST(caps.has("AUTH"));
    BOOST_TEST(!caps.has("PIPE"));
    BOOST_TEST(!caps.has("msa.example"));
    BOOST_TEST(caps.size() == 1000u);
    BOOST_TEST(parseEhloCaps({}).keywords.empty());
    BOOST_TEST(parseEhloCaps({"only greeting"}).keywords.empty());
}

BOOST_AUTO_TEST_CASE(size_values) {
    BOOST_TEST(parseEhloCaps({"g", "SIZE"}).size() == 0u);
    BOOST_TEST(parseEhloCaps({"g", "SIZE 0"}).size() == 0u);
    BOOST_TEST(parseEhloCaps({"g", "size 52428800"}).size() == 52428800u);
    BOOST_TEST(parseEhloCaps({"g", "SIZE junk"}).size() == 0u);
    BOOST_TEST(parseEhloCaps({"g", "8BITMIME"}).size() == 0u);
}

BOOST_AUTO_TEST_CASE(relayed_drops_and_caps_size) {
    EhloCaps msa = parseEhloCaps({"msa.example", "PIPELINING", "SIZE 10240000", "VRFY", "ETRN",
                                  "STARTTLS", "AUTH PLAIN LOGIN", "AUTH=PLAIN LOGIN",
                                  "ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8",
                                  "CHUNKING", "BINARYMIME", "XCLIENT NAME ADDR", "XFORWARD NAME",
                                  "EXPN", "TURN"});
    BOOST_TEST(relayedCaps(msa, 5000000) ==
               (Lines{"PIPELINING", "SIZE 5000000", "ENHANCEDSTATUSCODES", "8BITMIME", "DSN",
                      "SMTPUTF8"}));
    BOOST_TEST(relayedCaps(msa, 20000000) ==
               (Lines{"PIPELINING", "SIZE 10240000", "ENHANCEDSTATUSCODES", "8BITMIME", "DSN",
                      "SMTPUTF8"}));
}

BOOST_AUTO_TEST_CASE(relayed_size_unlimited_rules) {
    BOOST_TEST(relayedCaps(parseEhloCaps({"g", "SIZE"}), 100) == (Lines{"SIZE 100"}));
    BOOST_TEST(relayedCaps(parseEhloCaps({"g", "SIZE 0"}), 0) == (Lines{"SIZE"}));
    BOOST_TEST(relayedCaps(parseEhloCaps({"g", "SIZE 70"}), 0) == (Lines{"SIZE 70"}));
    BOOST_TEST(relayedCaps(parseEhloCaps({"g", "PIPELINING"}), 42) ==
               (Lines{"PIPELINING", "SIZE 42"}));
    BOOST_TEST(relayedCaps(parseEhloCaps({"g"}), 0) == (Lines{"SIZE"}));
}

// Before AUTH (checklist §4 "Advertise"): SIZE = min(ours, MSA's); 8BITMIME, SMTPUTF8 and DSN
// only if the MSA has them.  Unknown MSA: what we always said.
BOOST_AUTO_TEST_CASE(before_auth_intersection) {
    BOOST_TEST(capsBeforeAuth(nullptr, 52428800) ==
               (Lines{"PIPELINING", "SIZE 52428800", "ENHANCEDSTATUSCODES", "8BITMIME"}));
    const EhloCaps full = parseEhloCaps({"msa", "PIPELINING", "SIZE 10240000", "8BITMIME", "DSN", "SMTPUTF8",
                                         "CHUNKING", "XCLIENT ADDR", "AUTH PLAIN"});
    BOOST_TEST(capsBeforeAuth(&full, 52428800) ==
               (Lines{"PIPELINING", "SIZE 10240000", "ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8", "DSN"}));
    BOOST_TEST(capsBeforeAuth(&full, 1000) ==
               (Lines{"PIPELINING", "SIZE 1000", "ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8", "DSN"}));
    const EhloCaps bare = parseEhloCaps({"msa", "PIPELINING", "SIZE"});  // SIZE without a limit
    BOOST_TEST(capsBeforeAuth(&bare, 5000) == (Lines{"PIPELINING", "SIZE 5000", "ENHANCEDSTATUSCODES"}));
    const EhloCaps utf8 = parseEhloCaps({"msa", "smtputf8", "8bitmime"});
    BOOST_TEST(capsBeforeAuth(&utf8, 5000) ==
               (Lines{"PIPELINING", "SIZE 5000", "ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8"}));
}

BOOST_AUTO_TEST_SUITE_END()
