// restartOnlyChanges: the keys SIGHUP must warn about, one by one, and none for what it applies.
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "ops/config.h"
#include "config_fixture.h"

using namespace subproxy;

namespace {

std::vector<std::string> changes(const std::string& before, const std::string& after) {
    const std::string& base = testing::kMinimalConfig;
    return restartOnlyChanges(parseConfig(base + before, "old.conf"), parseConfig(base + after, "new.conf"));
}

using Keys = std::vector<std::string>;

}  // namespace

BOOST_AUTO_TEST_SUITE(config_reload)

BOOST_AUTO_TEST_CASE(same_configuration_changes_nothing) {
    BOOST_TEST(changes("", "").empty());
    BOOST_TEST(changes("status = { port = 9425; };", "status = { port = 9425; };").empty());
}

BOOST_AUTO_TEST_CASE(keys_applied_by_reload_are_not_reported) {
    // Per-session settings, the guard's policy, the trap and the migration table size apply.
    BOOST_TEST(changes("hostname = \"a.example\"; limits = { max_sessions = 10; };",
                       "hostname = \"b.example\"; limits = { max_sessions = 20; };")
                   .empty());
    BOOST_TEST(changes("guard = { ban_threshold = 5; }; trap = { fanout_limit = 3; }; migration = { max_entries = 10; };",
                       "guard = { ban_threshold = 6; }; trap = { fanout_limit = 4; }; migration = { max_entries = 20; };")
                   .empty());
}

BOOST_AUTO_TEST_CASE(every_restart_only_key_is_named) {
    BOOST_TEST(changes("", "pid_file = \"/run/subproxy/subproxy.pid\"; user = \"mail\"; group = \"mail\";") ==
                   (Keys{"pid_file", "user", "group"}),
               boost::test_tools::per_element());
    BOOST_TEST(changes("", "log_facility = \"daemon\"; auth = { workers = 2; max_workers = 3; };") ==
                   (Keys{"auth.workers", "auth.max_workers", "log_facility"}),
               boost::test_tools::per_element());
    BOOST_TEST(changes("log_file = \"/var/log/subproxy/a.log\";", "log_file = \"/var/log/subproxy/b.log\";") ==
                   (Keys{"log_file"}), boost::test_tools::per_element());
    BOOST_TEST(changes("", "log_file = \"/var/log/subproxy/subproxy.log\";") == (Keys{"log_file"}),
               boost::test_tools::per_element());
    BOOST_TEST(changes("", "auth = { backend = \"upstream\"; sasl_service = \"x\"; sasl_config_dir = \"/x\"; };") ==
                   (Keys{"auth.backend", "auth.sasl_service", "auth.sasl_config_dir"}),
               boost::test_tools::per_element());
    BOOST_TEST(changes("", "guard = { state_file = \"/g\"; control_socket = \"/c\"; };") ==
                   (Keys{"guard.state_file", "guard.control_socket"}),
               boost::test_tools::per_element());
    BOOST_TEST(changes("", "migration = { state_file = \"/m\"; flush_interval = 5; };") ==
                   (Keys{"migration.state_file", "migration.flush_interval"}),
               boost::test_tools::per_element());
    // accounts.flush_interval, the windows and the limits apply at once; the file does not move.
    BOOST_TEST(changes("", "accounts = { state_file = \"/a\"; flush_interval = 5; limits = { messages = 1; }; };") ==
                   (Keys{"accounts.state_file"}), boost::test_tools::per_element());
    BOOST_TEST(changes("", "state = { backend = \"redis\"; address = \"/run/redis.sock\"; username = \"u\"; "
                           "password = \"p\"; database = 2; key_prefix = \"gw:\"; connect_timeout = 100; "
                           "command_timeout = 100; replay_limit = 5; retry_interval = 3; };") ==
                   (Keys{"state.backend", "state.address", "state.username", "state.password", "state.database",
                         "state.key_prefix", "state.connect_timeout", "state.command_timeout", "state.replay_limit",
                         "state.retry_interval"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(status_endpoint_keys) {
    BOOST_TEST(changes("", "status = { };") == (Keys{"status"}), boost::test_tools::per_element());
    BOOST_TEST(changes("status = { };", "") == (Keys{"status"}), boost::test_tools::per_element());
    BOOST_TEST(changes("status = { port = 9425; };",
                       "status = { address = \"::1\"; port = 9426; token = \"0123456789abcdef0123\"; max_connections = 4; };") ==
                   (Keys{"status.address", "status.port", "status.token", "status.max_connections"}),
               boost::test_tools::per_element());
    BOOST_TEST(changes("status = { };", "status = { socket = \"/run/subproxy/status\"; };") ==
                   (Keys{"status.socket"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
