#include <boost/test/unit_test.hpp>

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "ops/metrics.h"

using namespace subproxy;

namespace {
bool contains(const std::string& h, const std::string& n) { return h.find(n) != std::string::npos; }

bool endsWith(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The exposition read back: TYPE per family, and the samples in order ("name{labels}" -> value).
struct Parsed {
    std::map<std::string, std::string> types;
    std::set<std::string> helps;
    std::vector<std::pair<std::string, std::string>> samples;
};

Parsed parse(const std::string& text) {
    Parsed p;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("# TYPE ", 0) == 0) {
            const auto space = line.find(' ', 7);
            p.types[line.substr(7, space - 7)] = line.substr(space + 1);
        } else if (line.rfind("# HELP ", 0) == 0) {
            p.helps.insert(line.substr(7, line.find(' ', 7) - 7));
        } else if (!line.empty()) {
            const auto space = line.rfind(' ');
            p.samples.emplace_back(line.substr(0, space), line.substr(space + 1));
        }
    }
    return p;
}

std::string familyOf(const std::string& sample, const std::map<std::string, std::string>& types) {
    std::string name = sample.substr(0, sample.find('{'));
    if (types.count(name)) {
        return name;
    }
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        if (endsWith(name, suffix)) {
            return name.substr(0, name.size() - std::string(suffix).size());
        }
    }
    return name;
}

ScrapeFigures someProcess() {
    ScrapeFigures live;
    ProcessFigures p;
    p.startTimeSeconds = 1700000000.5;
    p.cpuSeconds = 1.25;
    p.residentBytes = 4096 * 100;
    p.virtualBytes = 1 << 30;
    p.openFds = 17;
    p.maxFds = 1024;
    live.process = p;
    return live;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(metrics)

BOOST_AUTO_TEST_CASE(prometheus_has_help_type_and_totals) {
    Metrics m;
    m.sessionsTotal = 3;
    m.sessionsOpen = 1;
    m.authResult("PLAIN", true);
    m.authResult("PLAIN", true);
    m.authResult("LOGIN", false);
    m.reply(250);
    m.reply(535);
    m.reply(99);  // ignored
    m.upstreamError("verify");
    m.bans = 2;
    m.authBackendError("timeout");
    m.messagesRelayed = 1;
    m.bytesRelayed = 1234;
    const std::string text = renderPrometheus(m, {});
    BOOST_TEST(contains(text, "# HELP subproxy_sessions_total Customer sessions accepted.\n"
                              "# TYPE subproxy_sessions_total counter\nsubproxy_sessions_total 3\n"));
    BOOST_TEST(contains(text, "# TYPE subproxy_open_sessions gauge\nsubproxy_open_sessions 1\n"));
    BOOST_TEST(contains(text, "subproxy_auth_successes_total{mechanism=\"PLAIN\"} 2\n"));
    BOOST_TEST(contains(text, "subproxy_auth_successes_total{mechanism=\"CRAM-MD5\"} 0\n"));
    BOOST_TEST(contains(text, "subproxy_auth_failures_total{mechanism=\"LOGIN\"} 1\n"));
    BOOST_TEST(contains(text, "subproxy_replies_total{class=\"2xx\"} 1\n"));
    BOOST_TEST(contains(text, "subproxy_replies_total{class=\"5xx\"} 1\n"));
    BOOST_TEST(contains(text, "subproxy_upstream_errors_total{kind=\"verify\"} 1\n"));
    BOOST_TEST(contains(text, "subproxy_upstream_errors_total{kind=\"connect\"} 0\n"));
    BOOST_TEST(contains(text, "# TYPE subproxy_bans_total counter\nsubproxy_bans_total 2\n"));
    BOOST_TEST(contains(text, "# TYPE subproxy_auth_backend_errors_total counter\n"));
    BOOST_TEST(contains(text, "subproxy_auth_backend_errors_total{kind=\"error\"} 0\n"));
    BOOST_TEST(contains(text, "subproxy_auth_backend_errors_total{kind=\"timeout\"} 1\n"));
    // Units last.
    BOOST_TEST(contains(text, "subproxy_relayed_messages_total 1\n"));
    BOOST_TEST(contains(text, "subproxy_relayed_message_bytes_total 1234\n"));
    BOOST_TEST(!contains(text, "subproxy_message_bytes_relayed"));
    BOOST_TEST(!contains(text, "uptime"));  // process_start_time_seconds instead
    BOOST_TEST(text.back() == '\n');
}

BOOST_AUTO_TEST_CASE(every_known_series_exists_at_zero_from_the_start) {
    Metrics m;
    m.dnsblZones({"zen.spamhaus.org", "list.dnswl.org"});
    const std::string text = renderPrometheus(m, someProcess());
    const Parsed p = parse(text);
    for (const auto& [sample, value] : p.samples) {
        const bool notACount = sample.rfind("process_", 0) == 0 || sample.rfind("subproxy_build_info", 0) == 0 ||
                               sample == "subproxy_up" || sample == "subproxy_state_backend_up";
        if (notACount) {
            continue;
        }
        BOOST_TEST(value == "0", sample << " = " << value);
    }
    // Up until a Redis connection says otherwise (always, with the local back end).
    BOOST_TEST(contains(text, "# TYPE subproxy_state_backend_up gauge\nsubproxy_state_backend_up 1\n"));
    for (const char* mech : {"PLAIN", "LOGIN", "CRAM-MD5"}) {
        BOOST_TEST(contains(text, std::string("subproxy_auth_failures_total{mechanism=\"") + mech + "\"} 0\n"));
    }
    for (const char* kind : {"connect", "tls", "verify", "protocol", "refused", "lost", "timeout"}) {
        BOOST_TEST(contains(text, std::string("subproxy_upstream_errors_total{kind=\"") + kind + "\"} 0\n"));
    }
    for (const char* klass : {"2xx", "3xx", "4xx", "5xx"}) {
        BOOST_TEST(contains(text, std::string("subproxy_replies_total{class=\"") + klass + "\"} 0\n"));
    }
    for (const char* signal : {"pregreet", "no_auth", "fanout", "non_smtp", "bare_newline", "dnsbl"}) {
        BOOST_TEST(contains(text, std::string("subproxy_trap_detections_total{signal=\"") + signal + "\"} 0\n"));
    }
    for (const char* result : {"success", "failure", "temporary"}) {
        BOOST_TEST(contains(text, std::string("subproxy_auth_duration_seconds_count{result=\"") + result + "\"} 0\n"));
    }
    for (const char* command : {"mail", "rcpt", "data", "end_of_data", "rset", "noop", "quit", "auth"}) {
        BOOST_TEST(contains(text, std::string("subproxy_upstream_reply_duration_seconds_count{command=\"") + command +
                                      "\"} 0\n"));
    }
    for (const char* kind : {"queries", "hits", "errors"}) {
        for (const char* zone : {"zen.spamhaus.org", "list.dnswl.org"}) {
            BOOST_TEST(contains(text, std::string("subproxy_dnsbl_") + kind + "_total{zone=\"" + zone + "\"} 0\n"));
        }
    }
    for (const char* counter : {"subproxy_sessions_total", "subproxy_bans_total", "subproxy_ban_refusals_total",
                                "subproxy_auth_delayed_replies_total", "subproxy_upstream_failovers_total",
                                "subproxy_implicit_tls_detections_total", "subproxy_reloads_total"}) {
        BOOST_TEST(contains(text, std::string(counter) + " 0\n"), counter);
    }
    BOOST_TEST(contains(text, "# TYPE subproxy_active_bans gauge\nsubproxy_active_bans 0\n"));
}

// What `promtool check metrics` lints, checked on every family: HELP and TYPE once each, counters
// end in _total and nothing else does, units come last, snake_case, samples grouped by family.
BOOST_AUTO_TEST_CASE(names_follow_the_prometheus_conventions) {
    Metrics m;
    m.dnsblZones({"bl.example"});
    const Parsed p = parse(renderPrometheus(m, someProcess()) + renderMigrationPrometheus({{25, 0, 0}, {465, 0, 0}}));
    BOOST_TEST(p.types.size() == p.helps.size());
    for (const auto& [name, type] : p.types) {
        BOOST_TEST(p.helps.count(name) == 1u, name);
        BOOST_TEST(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == std::string::npos, name);
        BOOST_TEST(endsWith(name, "_total") == (type == "counter"), name << " " << type);
        const std::string base = endsWith(name, "_total") ? name.substr(0, name.size() - 6) : name;
        for (const char* unit : {"_seconds", "_bytes"}) {
            const auto at = base.find(unit);
            BOOST_TEST((at == std::string::npos || at + std::string(unit).size() == base.size()), name);
        }
    }
    std::set<std::string> done;
    std::string current;
    for (const auto& [sample, value] : p.samples) {
        const std::string family = familyOf(sample, p.types);
        BOOST_TEST(p.types.count(family) == 1u, sample);
        if (family != current) {
            BOOST_TEST(done.insert(family).second, family << " is split");
            current = family;
        }
    }
    for (const char* name : {"subproxy_relayed_messages_total", "subproxy_rejected_messages_total",
                             "subproxy_refused_connections_total", "subproxy_shed_sessions_total",
                             "subproxy_open_sessions", "subproxy_trap_detections_total"}) {
        BOOST_TEST(p.types.count(name) == 1u, name);
    }
}

BOOST_AUTO_TEST_CASE(trap_detections_are_one_metric_with_a_signal_label) {
    Metrics m;
    m.trapDetected(TrapSignal::NoAuth);
    m.trapDetected(TrapSignal::NoAuth);
    m.trapDetected(TrapSignal::Pregreet);
    const std::string text = renderPrometheus(m, {});
    BOOST_TEST(contains(text, "# HELP subproxy_trap_detections_total Spambot trap detections by signal.\n"
                              "# TYPE subproxy_trap_detections_total counter\n"
                              "subproxy_trap_detections_total{signal=\"pregreet\"} 1\n"
                              "subproxy_trap_detections_total{signal=\"no_auth\"} 2\n"
                              "subproxy_trap_detections_total{signal=\"fanout\"} 0\n"));
    BOOST_TEST(!contains(text, "subproxy_trap_no_auth"));
}

BOOST_AUTO_TEST_CASE(histogram_buckets_are_cumulative_and_inclusive) {
    Histogram h({0.1, 1, 10});
    h.observe(0.05);
    h.observe(0.1);  // "le": on the bound goes in that bucket
    h.observe(2);
    h.observe(100);
    BOOST_TEST(h.cumulative(0) == 2u);
    BOOST_TEST(h.cumulative(1) == 2u);
    BOOST_TEST(h.cumulative(2) == 3u);
    BOOST_TEST(h.count() == 4u);
    BOOST_TEST(h.sum() == 102.15, boost::test_tools::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(latency_histograms_render_with_labels_and_inf) {
    Metrics m;
    m.authAnswered(AuthOutcome::Success, 0.003);
    m.authAnswered(AuthOutcome::Failure, 0.5);
    m.authAnswered(AuthOutcome::Failure, 45);
    m.upstreamReplied("end_of_data", 0.25);
    const std::string text = renderPrometheus(m, {});
    BOOST_TEST(contains(text, "# TYPE subproxy_auth_duration_seconds histogram\n"));
    BOOST_TEST(contains(text, "subproxy_auth_duration_seconds_bucket{result=\"failure\",le=\"0.001\"} 0\n"));
    BOOST_TEST(contains(text, "subproxy_auth_duration_seconds_bucket{result=\"failure\",le=\"0.5\"} 1\n"));
    BOOST_TEST(contains(text, "subproxy_auth_duration_seconds_bucket{result=\"failure\",le=\"30\"} 1\n"));
    BOOST_TEST(contains(text, "subproxy_auth_duration_seconds_bucket{result=\"failure\",le=\"60\"} 2\n"));
    BOOST_TEST(contains(text, "subproxy_auth_duration_seconds_bucket{result=\"failure\",le=\"+Inf\"} 2\n"
                              "subproxy_auth_duration_seconds_sum{result=\"failure\"} 45.5\n"
                              "subproxy_auth_duration_seconds_count{result=\"failure\"} 2\n"));
    BOOST_TEST(contains(text, "subproxy_auth_duration_seconds_bucket{result=\"success\",le=\"0.0025\"} 0\n"
                              "subproxy_auth_duration_seconds_bucket{result=\"success\",le=\"0.005\"} 1\n"));
    BOOST_TEST(contains(text, "subproxy_auth_duration_seconds_sum{result=\"success\"} 0.003\n"));
    BOOST_TEST(contains(text, "# TYPE subproxy_upstream_reply_duration_seconds histogram\n"));
    BOOST_TEST(contains(
        text, "subproxy_upstream_reply_duration_seconds_bucket{command=\"end_of_data\",le=\"0.25\"} 1\n"));
    BOOST_TEST(contains(text, "subproxy_upstream_reply_duration_seconds_count{command=\"end_of_data\"} 1\n"));
    BOOST_TEST(contains(text, "subproxy_upstream_reply_duration_seconds_count{command=\"mail\"} 0\n"));
}

BOOST_AUTO_TEST_CASE(build_info_and_scrape_time_figures) {
    Metrics m;
    ScrapeFigures live = someProcess();
    live.activeBans = 3;
    const std::string text = renderPrometheus(m, live);
    BOOST_TEST(contains(text, "# TYPE subproxy_build_info gauge\nsubproxy_build_info{version=\"" SUBPROXY_VERSION
                              "\"} 1\n"));
    BOOST_TEST(contains(text, "# TYPE subproxy_active_bans gauge\nsubproxy_active_bans 3\n"));
    BOOST_TEST(contains(text, "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds 1700000000.5\n"));
    BOOST_TEST(contains(text, "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1.25\n"));
    BOOST_TEST(contains(text, "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 409600\n"));
    BOOST_TEST(contains(text, "process_virtual_memory_bytes 1073741824\n"));
    BOOST_TEST(contains(text, "# TYPE process_open_fds gauge\nprocess_open_fds 17\n"));
    BOOST_TEST(contains(text, "# TYPE process_max_fds gauge\nprocess_max_fds 1024\n"));
    // /proc unreadable: the family is left out, not served as zeros.
    BOOST_TEST(!contains(renderPrometheus(m, {}), "process_"));
}

BOOST_AUTO_TEST_CASE(proc_stat_fields_after_the_command_name) {
    // proc(5) fields 1..24 of a process whose name holds ") (" and spaces.
    const std::string stat =
        "4242 (sub) (proxy x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 "
        "250 125 0 0 20 0 3 0 500 123456789 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
    ProcessFigures p;
    BOOST_TEST(parseProcStat(stat, 100, 4096, 1700000000, p));
    BOOST_TEST(p.cpuSeconds == 3.75, boost::test_tools::tolerance(1e-9));  // (250 + 125) / 100
    BOOST_TEST(p.startTimeSeconds == 1700000005.0, boost::test_tools::tolerance(1e-9));  // boot + 500 ticks
    BOOST_TEST(p.virtualBytes == 123456789u);
    BOOST_TEST(p.residentBytes == 300u * 4096u);
    BOOST_TEST(!parseProcStat("4242 (x) S 1 2", 100, 4096, 0, p));
    BOOST_TEST(!parseProcStat("no parenthesis here", 100, 4096, 0, p));
    BOOST_TEST(!parseProcStat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 0 0 0 20 0 1 0 5 1 1 0", 100, 4096, 0, p));
}

BOOST_AUTO_TEST_CASE(dnsbl_zones_from_config_keep_their_series) {
    Metrics m;
    BOOST_TEST(!contains(renderPrometheus(m, {}), "subproxy_dnsbl_"));  // no zones, no families
    m.dnsblZones({"a.example"});
    m.dnsbl["a.example"].queries = 4;
    m.dnsbl["a.example"].hits = 1;
    m.dnsblZones({"b.example"});  // a reload that replaces the zone: a's counts stay
    const std::string text = renderPrometheus(m, {});
    BOOST_TEST(contains(text, "# TYPE subproxy_dnsbl_queries_total counter\n"
                              "subproxy_dnsbl_queries_total{zone=\"a.example\"} 4\n"
                              "subproxy_dnsbl_queries_total{zone=\"b.example\"} 0\n"));
    BOOST_TEST(contains(text, "subproxy_dnsbl_hits_total{zone=\"a.example\"} 1\n"));
    BOOST_TEST(contains(text, "subproxy_dnsbl_errors_total{zone=\"b.example\"} 0\n"));
}

BOOST_AUTO_TEST_CASE(label_values_are_escaped) {
    Metrics m;
    m.authResult("A\"B\\C\nD", false);
    BOOST_TEST(contains(renderPrometheus(m, {}), "{mechanism=\"A\\\"B\\\\C\\nD\"} 1\n"));
}

BOOST_AUTO_TEST_CASE(json_escapes_and_lists) {
    BOOST_TEST(jsonString("a\"b\\c\x01") == "\"a\\\"b\\\\c\\u0001\"");
    Metrics m;
    m.startedAt = 100;
    m.authResult("PLAIN", true);
    m.authBackendError("error");
    m.trapDetected(TrapSignal::Dnsbl);
    m.dnsblZones({"bl.example"});
    ScrapeFigures live;
    live.activeBans = 2;
    const std::string j = renderJson(m, live, 160);
    BOOST_TEST(contains(j, "\"uptime_seconds\": 60"));
    BOOST_TEST(contains(j, "\"auth_successes\": {\"CRAM-MD5\": 0, \"LOGIN\": 0, \"PLAIN\": 1}"));
    BOOST_TEST(contains(j, "\"auth_backend_errors\": {\"error\": 1, \"timeout\": 0}"));
    BOOST_TEST(contains(j, "\"replies\": {\"2xx\": 0, \"3xx\": 0, \"4xx\": 0, \"5xx\": 0}"));
    BOOST_TEST(contains(j, "\"active_bans\": 2"));
    BOOST_TEST(contains(j, "\"bare_newline\": 0, \"dnsbl\": 1}"));
    BOOST_TEST(contains(j, "\"dnsbl\": {\"bl.example\": {\"queries\": 0, \"hits\": 0, \"errors\": 0}}"));
    BOOST_TEST(j.front() == '{');
    BOOST_TEST(j.back() == '}');
}

// Two event loops' counters add up to what one loop would have counted (Hub::metrics).
BOOST_AUTO_TEST_CASE(metrics_of_two_workers_add_up_to_one) {
    Metrics one, a, b;
    auto count = [](Metrics& m, int n, const std::string& mech) {
        for (int i = 0; i < n; ++i) {
            ++m.sessionsTotal;
            ++m.sessionsOpen;
            m.authResult(mech, i % 2 == 0);
            m.reply(250);
            m.trapDetected(TrapSignal::FanOut);
            m.authAnswered(AuthOutcome::Success, 0.002 * (i + 1));
            m.upstreamReplied("mail", 0.5);
            m.upstreamError("timeout");
            ++m.dnsbl["zen"].hits;
            ++m.accounts.flags[i % kFlagReasons];
            ++m.accounts.limitRefusals[i % 2];
            ++m.accounts.loginRefusals;
            ++m.accounts.passwordChecks[i % 3];
        }
    };
    count(one, 3, "PLAIN");
    count(one, 4, "LOGIN");
    count(a, 3, "PLAIN");
    count(b, 4, "LOGIN");
    Metrics sum;
    addMetrics(sum, a);
    addMetrics(sum, b);
    ScrapeFigures live;
    BOOST_TEST(renderPrometheus(sum, live) == renderPrometheus(one, live));
}

// The per-loop sessions appear as one labelled series each, and only when there are loops.
BOOST_AUTO_TEST_CASE(worker_sessions_rendered_per_worker) {
    Metrics m;
    ScrapeFigures live;
    BOOST_TEST(renderPrometheus(m, live).find("subproxy_worker_sessions_total") == std::string::npos);
    live.workerSessions = {7, 5};
    const std::string text = renderPrometheus(m, live);
    BOOST_TEST(text.find("subproxy_worker_sessions_total{worker=\"0\"} 7\n") != std::string::npos);
    BOOST_TEST(text.find("subproxy_worker_sessions_total{worker=\"1\"} 5\n") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
