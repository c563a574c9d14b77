// Deployment keys (issue 4): pid_file, user, group, status { }, migration { }.
#include <boost/test/unit_test.hpp>

#include <string>

#include "ops/config.h"
#include "config_fixture.h"

using namespace subproxy;

namespace {

const std::string& kMinimal = testing::kMinimalConfig;

std::string errorOf(const std::string& text) { return testing::configError(text); }

}  // namespace

BOOST_AUTO_TEST_SUITE(config_deploy)

BOOST_AUTO_TEST_CASE(defaults) {
    const Config c = parseConfig(kMinimal, "test.conf");
    BOOST_TEST(c.daemon.pidFile == "");
    BOOST_TEST(c.daemon.user == "nobody");
    BOOST_TEST(c.daemon.group == "");
    BOOST_TEST(!c.status.enabled);
    BOOST_TEST(c.migration.stateFile == "");
    BOOST_TEST(c.migration.maxEntries == 100000);
    BOOST_TEST(c.migration.flushInterval == 60);
    BOOST_TEST(c.migration.notice == "");
    BOOST_TEST(c.migration.historyDays == 90);
}

BOOST_AUTO_TEST_CASE(all_keys) {
    const Config c = parseConfig(kMinimal +
                                     "pid_file = \"/run/subproxy/subproxy.pid\"; user = \"subproxy\"; group = \"sasl\";\n"
                                     "status = { address = \"::1\"; port = 9000; };\n"
                                     "migration = { state_file = \"/var/lib/subproxy/migration\"; max_entries = 5;\n"
                                     "  history_days = 30; flush_interval = 10; notice = \"Please use port 587\"; };\n",
                                 "test.conf");
    BOOST_TEST(c.daemon.pidFile == "/run/subproxy/subproxy.pid");
    BOOST_TEST(c.daemon.user == "subproxy");
    BOOST_TEST(c.daemon.group == "sasl");
    BOOST_TEST(c.status.enabled);
    BOOST_TEST(c.status.address == "::1");
    BOOST_TEST(c.status.port == 9000);
    BOOST_TEST(c.migration.maxEntries == 5);
    BOOST_TEST(c.migration.historyDays == 30);
    BOOST_TEST(c.migration.flushInterval == 10);
    BOOST_TEST(c.migration.notice == "Please use port 587");
}

BOOST_AUTO_TEST_CASE(empty_status_group_enables_loopback_default) {
    const Config c = parseConfig(kMinimal + "status = { };\n", "test.conf");
    BOOST_TEST(c.status.enabled);
    BOOST_TEST(c.status.address == "127.0.0.1");
    BOOST_TEST(c.status.port == 9425);
}

BOOST_AUTO_TEST_CASE(bad_values_name_file_line_and_key) {
    BOOST_TEST(errorOf(kMinimal + "status = { address = \"localhost\"; };\n").rfind("test.conf:3: 'status.address'", 0) == 0u);
    BOOST_TEST(errorOf(kMinimal + "status = { prot = 1; };\n").find("unknown key 'status.prot'") != std::string::npos);
    BOOST_TEST(errorOf(kMinimal + "migration = { max_entries = 0; };\n").find("'migration.max_entries' must be between") !=
               std::string::npos);
    BOOST_TEST(errorOf(kMinimal + "migration = { history_days = 0; };\n").find("'migration.history_days' must be between") !=
               std::string::npos);
    BOOST_TEST(errorOf(kMinimal + "migration = { notice = \"a\\nb\"; };\n").find("control characters") !=
               std::string::npos);
    BOOST_TEST(errorOf(kMinimal + "user = \"\";\n").find("'user' must not be empty") != std::string::npos);
    BOOST_TEST(errorOf(kMinimal + "pid_file = 3;\n").find("'pid_file' must be a string") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
