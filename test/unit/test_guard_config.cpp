// The "guard" group of the configuration (issue 3 items 1 and 4).
#include <boost/test/unit_test.hpp>

#include <string>

#include "ops/config.h"
#include "config_fixture.h"

using namespace subproxy;

namespace {

const std::string& kBase = testing::kMinimalConfig;

// The error for the minimal configuration plus a guard group.
std::string errorOf(const std::string& guard) { return testing::configError(kBase + guard); }

}  // namespace

BOOST_AUTO_TEST_SUITE(guard_config)

BOOST_AUTO_TEST_CASE(defaults) {
    const Config c = parseConfig(kBase, "test.conf");
    const GuardConfig& g = c.guard;
    BOOST_TEST(g.policy.ipv6Prefix == 64u);
    BOOST_TEST(g.policy.delayBase == 2.0);
    BOOST_TEST(g.policy.delayMax == 15.0);
    BOOST_TEST(g.policy.window == 600);
    BOOST_TEST(g.policy.banThreshold == 10u);
    BOOST_TEST(g.policy.banTime == 3600);
    BOOST_TEST(g.policy.maxTracked == 100000u);
    BOOST_TEST(!g.banClose);
    BOOST_TEST(g.trusted.empty());
    BOOST_TEST(g.stateFile.empty());
    BOOST_TEST(g.controlSocket.empty());
    BOOST_TEST(g.maxSessionsPerClient == 50);
    BOOST_TEST(g.connectionRate == 0);
}

BOOST_AUTO_TEST_CASE(every_key) {
    const Config c = parseConfig(kBase +
                                     "guard = { trusted_networks = [ \"10.0.0.0/8\", \"2001:db8::/32\" ];\n"
                                     "  ipv6_prefix = 56; auth_delay = 0.5; auth_delay_max = 8;\n"
                                     "  failure_window = 300; ban_threshold = 0; ban_time = 60;\n"
                                     "  ban_action = \"close\"; max_tracked = 500;\n"
                                     "  state_file = \"/var/lib/subproxy/guard.state\"; state_interval = 5;\n"
                                     "  control_socket = \"/run/subproxy/control\";\n"
                                     "  max_sessions_per_client = 0; connection_rate = 30;\n"
                                     "  connection_rate_window = 10; };\n",
                                 "test.conf");
    const GuardConfig& g = c.guard;
    BOOST_TEST(g.trusted.size() == 2u);
    BOOST_TEST(g.trusted.contains("10.9.8.7"));
    BOOST_TEST(g.policy.ipv6Prefix == 56u);
    BOOST_TEST(g.policy.delayBase == 0.5);
    BOOST_TEST(g.policy.delayMax == 8.0);
    BOOST_TEST(g.policy.window == 300);
    BOOST_TEST(g.policy.banThreshold == 0u);
    BOOST_TEST(g.policy.banTime == 60);
    BOOST_TEST(g.banClose);
    BOOST_TEST(g.policy.maxTracked == 500u);
    BOOST_TEST(g.stateFile == "/var/lib/subproxy/guard.state");
    BOOST_TEST(g.stateInterval == 5);
    BOOST_TEST(g.controlSocket == "/run/subproxy/control");
    BOOST_TEST(g.maxSessionsPerClient == 0);
    BOOST_TEST(g.connectionRate == 30);
    BOOST_TEST(g.connectionRateWindow == 10);
}

BOOST_AUTO_TEST_CASE(bad_values_name_the_key_and_line) {
    BOOST_TEST(errorOf("guard = { bogus = 1; };").find("test.conf:3: unknown key 'guard.bogus'") == 0u);
    BOOST_TEST(errorOf("guard = {\n trusted_networks = [ \"10.0.0.0/33\" ]; };").find("test.conf:4:") == 0u);
    BOOST_TEST(errorOf("guard = { trusted_networks = \"nonsense\"; };").find("not an address or CIDR") !=
               std::string::npos);
    BOOST_TEST(errorOf("guard = { ipv6_prefix = 8; };").find("between 16 and 128") != std::string::npos);
    BOOST_TEST(errorOf("guard = { auth_delay = -1.0; };").find("'guard.auth_delay'") != std::string::npos);
    BOOST_TEST(errorOf("guard = { auth_delay = 4; auth_delay_max = 2; };").find("must not be smaller") !=
               std::string::npos);
    BOOST_TEST(errorOf("guard = { ban_action = \"drop\"; };").find("expected one of \"reply\", \"close\"") !=
               std::string::npos);
    BOOST_TEST(errorOf("guard = { auth_delay = \"2\"; };").find("must be a number of seconds") != std::string::npos);
    BOOST_TEST(errorOf("guard = { auth_delay = 0; ban_threshold = 0; };").empty());
}

BOOST_AUTO_TEST_SUITE_END()
