// Spambot trap, pure parts: action names, tarpit cap, non-SMTP detection, fan-out tracker,
// the stable log line, and the trap { } configuration group.
#include <boost/test/unit_test.hpp>

#include "ops/config.h"
#include "config_fixture.h"
#include "defence/trap.h"

using namespace subproxy;

namespace {
const std::string& kMinimal = testing::kMinimalConfig;

// The error for the minimal configuration plus `text`.
std::string errorOf(const std::string& text) { return testing::configError(kMinimal + text, "t.conf"); }
}  // namespace

BOOST_AUTO_TEST_SUITE(trap)

BOOST_AUTO_TEST_CASE(actions_parse_and_name) {
    TrapAction a = TrapAction::Ignore;
    BOOST_TEST(parseTrapAction("TARPIT", a));
    BOOST_TEST(static_cast<int>(a) == static_cast<int>(TrapAction::Tarpit));
    BOOST_TEST(!parseTrapAction("drop", a));
    BOOST_TEST(std::string(trapActionName(TrapAction::Ban)) == "ban");
    BOOST_TEST(std::string(trapSignalName(TrapSignal::NoAuth)) == "no_auth");
}

BOOST_AUTO_TEST_CASE(tarpit_beyond_cap_rejects) {
    BOOST_TEST(static_cast<int>(effectiveTrapAction(TrapAction::Tarpit, true)) == static_cast<int>(TrapAction::Tarpit));
    BOOST_TEST(static_cast<int>(effectiveTrapAction(TrapAction::Tarpit, false)) == static_cast<int>(TrapAction::Reject));
    BOOST_TEST(static_cast<int>(effectiveTrapAction(TrapAction::Log, false)) == static_cast<int>(TrapAction::Log));
}

BOOST_AUTO_TEST_CASE(non_smtp_detection) {
    BOOST_TEST(detectHttpLine("GET / HTTP/1.1") == "HTTP request");
    BOOST_TEST(detectHttpLine("post /x HTTP/1.0") == "HTTP request");
    BOOST_TEST(detectHttpLine("CONNECT mx.example:25 HTTP/1.1") == "HTTP request");
    BOOST_TEST(detectHttpLine("Host: example.com") == "HTTP header");
    BOOST_TEST(detectHttpLine("User-Agent: curl/7.88") == "HTTP header");
    BOOST_TEST(detectHttpLine("HEAD /") == "");  // needs a version to be HTTP
    BOOST_TEST(detectHttpLine("EHLO GET") == "");
    BOOST_TEST(detectHttpLine("MAIL FROM:<a@b>") == "");
    BOOST_TEST(detectHttpLine("HELP") == "");
    BOOST_TEST(detectHttpLine("X-Custom: y") == "");  // not a header we know
    BOOST_TEST(detectBinaryHello(std::string("\x16\x03\x01\x02\x00", 5)) == "TLS handshake on the plain port");
    BOOST_TEST(detectBinaryHello("EHLO x") == "");
    BOOST_TEST(detectBinaryHello(std::string("\x80\x2e\x01", 3)) == "SSLv2 handshake on the plain port");
}

// Before any greeting on a STARTTLS listener: a TLS record start means a mail program set to
// "SSL" (served as implicit TLS), not junk.
BOOST_AUTO_TEST_CASE(first_bytes_before_the_greeting) {
    BOOST_TEST((classifyFirstBytes(std::string("\x16\x03\x01\x02\x00\x01", 6)) == FirstBytes::TlsHandshake));
    BOOST_TEST((classifyFirstBytes(std::string("\x16\x03", 2)) == FirstBytes::TlsHandshake));
    BOOST_TEST((classifyFirstBytes(std::string("\x16", 1)) == FirstBytes::Undecided));
    BOOST_TEST((classifyFirstBytes(std::string("\x16\x02", 2)) == FirstBytes::Other));
    BOOST_TEST((classifyFirstBytes(std::string("\x80\x2e\x01", 3)) == FirstBytes::Other));  // SSLv2: junk
    BOOST_TEST((classifyFirstBytes("GET / HTTP/1.1\r\n") == FirstBytes::Other));
    BOOST_TEST((classifyFirstBytes("EHLO x\r\n") == FirstBytes::Other));
    BOOST_TEST((classifyFirstBytes("") == FirstBytes::Other));
}

BOOST_AUTO_TEST_CASE(log_line_is_stable_and_clean) {
    BOOST_TEST(formatTrapLine(TrapSignal::Pregreet, TrapAction::Log, "192.0.2.1", 25, "bot\r\nx", "EHLO x") ==
               "trap: signal=pregreet action=log dialled=[192.0.2.1]:25 helo=<bot??x> detail=<EHLO x>");
}

BOOST_AUTO_TEST_CASE(fanout_counts_distinct_within_window) {
    FanOutTracker t(3, 60, 100);
    BOOST_TEST(t.record("10.0.0.1", "192.0.2.1", 0) == 1);
    BOOST_TEST(t.record("10.0.0.1", "192.0.2.1", 1) == 1);  // same destination
    BOOST_TEST(t.record("10.0.0.1", "192.0.2.2", 2) == 2);
    BOOST_TEST(t.record("10.0.0.1", "192.0.2.3", 3) == 3);
    BOOST_TEST(t.record("10.0.0.1", "192.0.2.4", 4) == 4);  // over the limit of 3
    BOOST_TEST(t.record("10.0.0.1", "192.0.2.5", 5) == 4);  // capped at limit + 1
    BOOST_TEST(t.record("10.0.0.2", "192.0.2.1", 5) == 1);  // per client
    // The window slides: everything seen at 0..5 is forgotten at 70.
    BOOST_TEST(t.record("10.0.0.1", "192.0.2.9", 70) == 1);
}

BOOST_AUTO_TEST_CASE(fanout_memory_is_bounded) {
    FanOutTracker t(2, 60, 3);
    for (int i = 0; i < 10; ++i) {
        t.record("10.0.0." + std::to_string(i), "192.0.2.1", i);
    }
    BOOST_TEST(t.clients() == 3u);
    // The most recently seen survive; 10.0.0.0 was evicted and starts again.
    BOOST_TEST(t.record("10.0.0.9", "192.0.2.2", 11) == 2);
    BOOST_TEST(t.record("10.0.0.0", "192.0.2.2", 11) == 1);
}

BOOST_AUTO_TEST_CASE(config_group) {
    Config c = parseConfig(kMinimal +
                               "trap = { greet_wait = 2; pregreet = \"tarpit\"; no_auth = \"ban\"; "
                               "fanout = \"reject\"; fanout_limit = 5; tarpit_max = 7; tarpit_interval_ms = 200; "
                               "greet_cache_ttl = 0; };\n",
                           "t.conf");
    BOOST_TEST(c.trap.greetWaitMs == 2000);
    BOOST_TEST(static_cast<int>(c.trap.action(TrapSignal::Pregreet)) == static_cast<int>(TrapAction::Tarpit));
    BOOST_TEST(static_cast<int>(c.trap.action(TrapSignal::NoAuth)) == static_cast<int>(TrapAction::Ban));
    BOOST_TEST(static_cast<int>(c.trap.action(TrapSignal::NonSmtp)) == static_cast<int>(TrapAction::Reject));
    BOOST_TEST(c.trap.fanoutLimit == 5);
    BOOST_TEST(c.trap.tarpitMax == 7);
    BOOST_TEST(c.trap.tarpitIntervalMs == 200);
    BOOST_TEST(c.trap.greetCacheTtl == 0);
    BOOST_TEST(c.trap.greetCacheSize == 10000);
    BOOST_TEST(errorOf("trap = { pregreet = \"drop\"; };").find("t.conf:3: invalid value \"drop\" for 'trap.pregreet'") == 0u);
    BOOST_TEST(errorOf("trap = { greet_wait = 100; };").find("must be between 0 and 60") != std::string::npos);
    BOOST_TEST(errorOf("trap = { stutter = 1; };").find("unknown key 'trap.stutter'") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
