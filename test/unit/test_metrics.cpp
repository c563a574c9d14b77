#include <boost/test/unit_test.hpp>

#include <string>

#include "metrics.h"

using namespace subproxy;

namespace {
bool contains(const std::string& h, const std::string& n) { return h.find(n) != std::string::npos; }
}  // namespace

BOOST_AUTO_TEST_SUITE(metrics)

BOOST_AUTO_TEST_CASE(prometheus_has_help_type_and_totals) {
    Metrics m;
    m.startedAt = 100;
    m.sessionsTotal = 3;
    m.sessionsOpen = 1;
    m.authResult("PLAIN", true);
    m.authResult("PLAIN", true);
    m.authResult("LOGIN", false);
    m.reply(250);
    m.reply(535);
    m.reply(99);  // ignored
    m.upstreamError("verify");
    m.count("bans", "Client addresses banned.", 2);
    m.authBackendError("timeout");
    const std::string text = renderPrometheus(m, 160);
    BOOST_TEST(contains(text, "# HELP subproxy_sessions_total Customer sessions accepted.\n"
                              "# TYPE subproxy_sessions_total counter\nsubproxy_sessions_total 3\n"));
    BOOST_TEST(contains(text, "# TYPE subproxy_sessions_open gauge\nsubproxy_sessions_open 1\n"));
    BOOST_TEST(contains(text, "subproxy_uptime_seconds 60\n"));
    BOOST_TEST(contains(text, "subproxy_auth_successes_total{mechanism=\"PLAIN\"} 2\n"));
    BOOST_TEST(contains(text, "subproxy_auth_successes_total{mechanism=\"CRAM-MD5\"} 0\n"));
    BOOST_TEST(contains(text, "subproxy_auth_failures_total{mechanism=\"LOGIN\"} 1\n"));
    BOOST_TEST(contains(text, "subproxy_replies_total{class=\"2xx\"} 1\n"));
    BOOST_TEST(contains(text, "subproxy_replies_total{class=\"5xx\"} 1\n"));
    BOOST_TEST(contains(text, "subproxy_upstream_errors_total{kind=\"verify\"} 1\n"));
    BOOST_TEST(contains(text, "subproxy_upstream_errors_total{kind=\"connect\"} 0\n"));
    BOOST_TEST(contains(text, "# HELP subproxy_bans_total Client addresses banned.\n"));
    BOOST_TEST(contains(text, "subproxy_bans_total 2\n"));
    BOOST_TEST(contains(text, "# TYPE subproxy_auth_backend_errors_total counter\n"));
    BOOST_TEST(contains(text, "subproxy_auth_backend_errors_total{kind=\"error\"} 0\n"));
    BOOST_TEST(contains(text, "subproxy_auth_backend_errors_total{kind=\"timeout\"} 1\n"));
    BOOST_TEST(text.back() == '\n');
}

BOOST_AUTO_TEST_CASE(label_values_are_escaped) {
    Metrics m;
    m.authResult("A\"B\\C\nD", false);
    BOOST_TEST(contains(renderPrometheus(m, 0), "{mechanism=\"A\\\"B\\\\C\\nD\"} 1\n"));
}

BOOST_AUTO_TEST_CASE(json_escapes_and_lists) {
    BOOST_TEST(jsonString("a\"b\\c\x01") == "\"a\\\"b\\\\c\\u0001\"");
    Metrics m;
    m.authResult("PLAIN", true);
    m.authBackendError("error");
    const std::string j = renderJson(m, 0);
    BOOST_TEST(contains(j, "\"auth_successes\": {\"PLAIN\": 1}"));
    BOOST_TEST(contains(j, "\"auth_backend_errors\": {\"error\": 1}"));
    BOOST_TEST(contains(j, "\"replies\": {\"2xx\": 0, \"3xx\": 0, \"4xx\": 0, \"5xx\": 0}"));
    BOOST_TEST(j.front() == '{');
    BOOST_TEST(j.back() == '}');
}

BOOST_AUTO_TEST_SUITE_END()
