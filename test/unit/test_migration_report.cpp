#include <boost/test/unit_test.hpp>

#include <string>

#include "ops/migration_report.h"

using namespace subproxy;

namespace {

bool contains(const std::string& h, const std::string& n) { return h.find(n) != std::string::npos; }

// 2026-11-22 00:00:00 UTC: every time here is injected, none is read from the clock.
constexpr std::int64_t kDay0 = 1795305600;
constexpr std::int64_t kDay = 86400;

MigrationSubmission sub(const std::string& user, const std::string& address, int port,
                        const std::string& mech = "PLAIN", const std::string& tls = "TLSv1.3") {
    return {user, address, port, mech, tls};
}

const MigrationRecord& rec(const MigrationReport& r, const std::string& user, const std::string& address, int port) {
    return r.records().at({user, address, port});
}

MigrationLimits limits(std::size_t maxEntries, int historyDays = 90) { return {maxEntries, historyDays}; }

}  // namespace

BOOST_AUTO_TEST_SUITE(migration_report)

// Issue 9 item 6: one record per (user, client address, dialled port); 465 apart from 25.
BOOST_AUTO_TEST_CASE(one_record_per_user_address_and_dialled_port) {
    MigrationReport r;
    r.record(sub("alice", "192.0.2.1", 25, "LOGIN", "TLSv1.0"), kDay0 + 10);
    r.record(sub("alice", "192.0.2.1", 25, "PLAIN", "TLSv1.2"), kDay0 + 20);
    r.record(sub("alice", "192.0.2.1", 465), kDay0 + 30);
    r.record(sub("alice", "198.51.100.7", 25, "CRAM-MD5", ""), kDay0 + 40);
    r.record(sub("bob", "192.0.2.1", 25), kDay0 + 50);
    BOOST_TEST(r.records().size() == 4u);
    const auto& a25 = rec(r, "alice", "192.0.2.1", 25);
    BOOST_TEST(a25.count == 2u);
    BOOST_TEST(a25.first == kDay0 + 10);
    BOOST_TEST(a25.last == kDay0 + 20);
    BOOST_TEST(a25.mechanism == "PLAIN");  // of the last submission
    BOOST_TEST(a25.tls == "TLSv1.2");
    BOOST_TEST(rec(r, "alice", "192.0.2.1", 465).count == 1u);
    BOOST_TEST(rec(r, "alice", "198.51.100.7", 25).mechanism == "CRAM-MD5");
    BOOST_TEST(rec(r, "alice", "198.51.100.7", 25).tls == "");
    BOOST_TEST(r.total() == 5u);
    BOOST_TEST(r.totals().at(25) == 4u);
    BOOST_TEST(r.totals().at(465) == 1u);
    BOOST_TEST(r.distinctUsers() == 2u);
    BOOST_TEST(r.dirty());
}

BOOST_AUTO_TEST_CASE(lru_eviction_keeps_the_most_recent_records) {
    MigrationReport r(limits(2));
    r.record(sub("a", "x", 25), 10);
    r.record(sub("b", "x", 25), 20);
    r.record(sub("a", "x", 25), 30);   // a is now the most recent
    r.record(sub("a", "x", 465), 40);  // a new record: evicts b
    BOOST_TEST(r.records().size() == 2u);
    BOOST_TEST(r.records().count({"a", "x", 25}) == 1u);
    BOOST_TEST(r.records().count({"b", "x", 25}) == 0u);
    BOOST_TEST(r.records().count({"a", "x", 465}) == 1u);
    BOOST_TEST(r.totals().at(25) == 3u);  // totals and history are not evicted with records
    r.setLimits(limits(1));
    BOOST_TEST(r.records().size() == 1u);
    BOOST_TEST(r.records().count({"a", "x", 465}) == 1u);
}

BOOST_AUTO_TEST_CASE(a_smaller_bound_drops_the_oldest_at_once) {
    MigrationReport r(limits(1000));
    for (int i = 0; i < 1000; ++i) {
        r.record(sub("u" + std::to_string(i), "192.0.2.1", 25), 1000 + (i * 7919) % 1000);  // shuffled times
    }
    r.setLimits(limits(10));
    BOOST_TEST(r.records().size() == 10u);
    for (const auto& [key, record] : r.records()) {
        BOOST_TEST(record.last >= 1990);  // the ten most recent: 1990..1999
    }
}

BOOST_AUTO_TEST_CASE(state_file_round_trip_with_odd_names_and_history) {
    MigrationReport r;
    r.record(sub("john doe%@example.com", "2001:db8::1", 25, "CRAM-MD5", "TLSv1.2"), kDay0 + 5);
    r.record(sub("-", "192.0.2.9", 465, "", ""), kDay0 + 6);
    r.record(sub("tab\there\n", "192.0.2.9", 25), kDay0 + 7);
    r.record(sub("", "192.0.2.10", 25), kDay0 + 8);
    const std::string text = r.serialize();
    BOOST_TEST(text.rfind("subproxy-migration 2\ntoday 2026-11-22\ntotal 25 3\ntotal 465 1\n", 0) == 0u);
    BOOST_TEST(contains(text, "R john%20doe%25@example.com 2001:db8::1 25 1 1795305605 1795305605 CRAM-MD5 TLSv1.2\n"));
    BOOST_TEST(contains(text, "R %2D 192.0.2.9 465 1 1795305606 1795305606 - -\n"));
    BOOST_TEST(contains(text, "R - 192.0.2.10 25 1 "));
    BOOST_TEST(contains(text, "H 2026-11-22 25 3 3\n"));
    BOOST_TEST(contains(text, "H 2026-11-22 465 1 1\n"));
    BOOST_TEST(contains(text, "T 25 @192.0.2.10\n"));
    std::string error;
    auto back = MigrationReport::parse(text, {}, &error);
    BOOST_REQUIRE_MESSAGE(back.has_value(), error);
    BOOST_TEST(back->serialize() == text);
    BOOST_TEST(back->records() == r.records());
    BOOST_TEST(back->history() == r.history());
    BOOST_TEST(back->records().count({"tab\there\n", "192.0.2.9", 25}) == 1u);
    BOOST_TEST(!back->dirty());
}

// A version 1 file (users and addresses in two tables, no port) still loads: each user at its
// last client address with port unknown (0), unknown users' addresses kept, the total on port 0.
BOOST_AUTO_TEST_CASE(version_1_state_file_converts) {
    std::string error;
    auto r = MigrationReport::parse("subproxy-migration 1\ntotal 9\n"
                                    "U alice 3 5 9 192.0.2.1 TLSv1.2\n"
                                    "U bob 4 6 8 192.0.2.2\n"          // written before the TLS field
                                    "A 192.0.2.1 3 5 9 alice TLSv1.2\n"
                                    "A 192.0.2.2 4 6 8 bob -\n"
                                    "A 192.0.2.3 2 1 2 - TLSv1.0\n",  // last user unknown
                                    {}, &error);
    BOOST_REQUIRE_MESSAGE(r.has_value(), error);
    BOOST_TEST(r->records().size() == 3u);
    BOOST_TEST(rec(*r, "alice", "192.0.2.1", 0).count == 3u);
    BOOST_TEST(rec(*r, "alice", "192.0.2.1", 0).first == 5);
    BOOST_TEST(rec(*r, "alice", "192.0.2.1", 0).last == 9);
    BOOST_TEST(rec(*r, "alice", "192.0.2.1", 0).tls == "TLSv1.2");
    BOOST_TEST(rec(*r, "alice", "192.0.2.1", 0).mechanism == "");
    BOOST_TEST(rec(*r, "bob", "192.0.2.2", 0).tls == "");
    BOOST_TEST(rec(*r, "", "192.0.2.3", 0).count == 2u);
    BOOST_TEST(r->total() == 9u);
    BOOST_TEST(r->totals().at(0) == 9u);
    BOOST_TEST(r->history().empty());
    BOOST_TEST(r->dirty());  // written back as version 2 at the next flush
    const std::string text = r->serialize();
    BOOST_TEST(text.rfind("subproxy-migration 2\n", 0) == 0u);
    BOOST_TEST(contains(text, "total 0 9\n"));
    BOOST_TEST(contains(text, "R alice 192.0.2.1 0 3 5 9 - TLSv1.2\n"));
    auto again = MigrationReport::parse(text, {}, &error);
    BOOST_REQUIRE(again.has_value());
    BOOST_TEST(again->records() == r->records());
    // Unknown port: "-" in the table, empty in CSV, null in JSON; not a metric series.
    BOOST_TEST(contains(r->recordsText({}), "port unknown: 9"));
    BOOST_TEST(contains(r->recordsCsv({}), "alice,192.0.2.1,,3,"));
    BOOST_TEST(contains(r->json({}, 100), "\"port\": null"));
    for (const auto& f : r->portFigures(100)) {
        BOOST_TEST(f.port != 0);
    }
}

// The transition over time, with an injected clock: per UTC day and dialled port, submissions
// and distinct users; days beyond history_days go.
BOOST_AUTO_TEST_CASE(history_rolls_over_by_utc_day) {
    MigrationReport r(limits(100, 3));
    r.record(sub("alice", "192.0.2.1", 25), kDay0 + 10);
    r.record(sub("alice", "192.0.2.2", 25), kDay0 + 20);  // another address: still one user
    r.record(sub("bob", "192.0.2.3", 25), kDay0 + 30);
    r.record(sub("alice", "192.0.2.1", 465), kDay0 + 40);
    r.record(sub("", "192.0.2.9", 25), kDay0 + 50);        // unknown user: counted by address
    r.record(sub("", "192.0.2.9", 25), kDay0 + kDay - 1);  // 23:59:59, same day
    const auto& h = r.history();
    BOOST_TEST((h.at({20779, 25}) == MigrationDay{3, 5}));
    BOOST_TEST((h.at({20779, 465}) == MigrationDay{1, 1}));
    r.record(sub("alice", "192.0.2.1", 25), kDay0 + kDay);  // midnight: a new day
    BOOST_TEST((h.at({20780, 25}) == MigrationDay{1, 1}));
    BOOST_TEST((h.at({20779, 25}) == MigrationDay{3, 5}));
    r.record(sub("bob", "192.0.2.3", 25), kDay0 + 2 * kDay + 5);
    BOOST_TEST(h.count({20779, 25}) == 1u);  // three days kept: 20779..20781
    r.record(sub("bob", "192.0.2.3", 25), kDay0 + 3 * kDay + 5);
    BOOST_TEST(h.count({20779, 25}) == 0u);  // 20780..20782
    BOOST_TEST(h.count({20779, 465}) == 0u);
    BOOST_TEST(h.count({20780, 25}) == 1u);
    // A longer gap drops everything older at once.
    r.record(sub("bob", "192.0.2.3", 25), kDay0 + 30 * kDay);
    BOOST_TEST(h.size() == 1u);
}

// A restart in the middle of the day must not count a user twice: the state file keeps who
// was counted today.
BOOST_AUTO_TEST_CASE(todays_distinct_users_survive_a_restart) {
    MigrationReport r;
    r.record(sub("alice", "192.0.2.1", 25), kDay0 + 100);
    std::string error;
    auto back = MigrationReport::parse(r.serialize(), {}, &error);
    BOOST_REQUIRE(back.has_value());
    back->record(sub("alice", "192.0.2.1", 25), kDay0 + 200);
    back->record(sub("carol", "192.0.2.5", 25), kDay0 + 300);
    BOOST_TEST((back->history().at({20779, 25}) == MigrationDay{2, 3}));
    back->record(sub("alice", "192.0.2.1", 25), kDay0 + kDay + 1);  // tomorrow: counted anew
    BOOST_TEST((back->history().at({20780, 25}) == MigrationDay{1, 1}));
    BOOST_TEST(!contains(back->serialize(), "T 25 carol\n"));
}

BOOST_AUTO_TEST_CASE(a_clock_stepping_back_over_midnight_counts_into_the_day_begun) {
    MigrationReport r;
    r.record(sub("alice", "192.0.2.1", 25), kDay0 + 1);
    r.record(sub("bob", "192.0.2.2", 25), kDay0 - 1);  // NTP stepped back a few seconds
    BOOST_TEST((r.history().at({20779, 25}) == MigrationDay{2, 2}));
    BOOST_TEST(r.history().count({20778, 25}) == 0u);
}

// A clock that was days ahead must not keep every later submission in that future day.
BOOST_AUTO_TEST_CASE(a_clock_corrected_from_days_ahead_starts_over_at_the_real_day) {
    MigrationReport r;
    r.record(sub("alice", "192.0.2.1", 25), kDay0 + 1);
    r.record(sub("alice", "192.0.2.1", 25), kDay0 + 400 * kDay);  // a wrong clock, a year ahead
    r.record(sub("alice", "192.0.2.1", 25), kDay0 + 2);            // corrected
    // The year ahead looked like a long downtime and let the real day fall out of the window;
    // after the correction the real day counts from here, and the future day is gone.
    BOOST_TEST((r.history().at({20779, 25}) == MigrationDay{1, 1}));
    BOOST_TEST(r.history().count({20779 + 400, 25}) == 0u);
    BOOST_TEST(r.history().size() == 1u);
    r.record(sub("bob", "192.0.2.2", 25), kDay0 + kDay + 3);  // and the next day begins as usual
    BOOST_TEST((r.history().at({20780, 25}) == MigrationDay{1, 1}));
}

BOOST_AUTO_TEST_CASE(distinct_users_per_day_are_bounded) {
    MigrationReport r(limits(2));
    r.record(sub("a", "x", 25), kDay0);
    r.record(sub("b", "x", 25), kDay0);
    r.record(sub("c", "x", 25), kDay0);
    r.record(sub("a", "x", 25), kDay0);
    BOOST_TEST((r.history().at({20779, 25}) == MigrationDay{2, 4}));  // at most max_entries remembered
    BOOST_TEST(r.records().size() == 2u);
}

BOOST_AUTO_TEST_CASE(select_by_port_since_and_not_since) {
    MigrationReport r;
    r.record(sub("alice", "192.0.2.1", 25), kDay0 - 60 * kDay);  // home, two months ago
    r.record(sub("alice", "192.0.2.2", 25), kDay0 - 1 * kDay);   // office, yesterday
    r.record(sub("bob", "192.0.2.3", 25), kDay0 - 40 * kDay);    // stopped 40 days ago
    r.record(sub("bob", "192.0.2.3", 465), kDay0 - 2 * kDay);    // but still uses 465
    r.record(sub("carol", "192.0.2.4", 465), kDay0 - 50 * kDay);
    auto keys = [&](const MigrationFilter& f) {
        std::string out;
        for (const auto& [k, rec] : r.select(f)) {
            out += k.user + "/" + k.address + "/" + std::to_string(k.port) + " ";
        }
        return out;
    };
    // Newest first.
    BOOST_TEST(keys({}) == "alice/192.0.2.2/25 bob/192.0.2.3/465 bob/192.0.2.3/25 carol/192.0.2.4/465 "
                           "alice/192.0.2.1/25 ");
    MigrationFilter f;
    f.port = 25;
    BOOST_TEST(keys(f) == "alice/192.0.2.2/25 bob/192.0.2.3/25 alice/192.0.2.1/25 ");
    f = {};
    f.since = kDay0 - 30 * kDay;  // seen in the last 30 days: still on the old settings
    BOOST_TEST(keys(f) == "alice/192.0.2.2/25 bob/192.0.2.3/465 ");
    f = {};
    f.notSince = kDay0 - 30 * kDay;  // users not seen for 30 days: all their records
    BOOST_TEST(keys(f) == "carol/192.0.2.4/465 ");
    f.port = 25;  // ... through port 25: bob stopped using 25, alice did not
    BOOST_TEST(keys(f) == "bob/192.0.2.3/25 ");
}

BOOST_AUTO_TEST_CASE(records_as_text_csv_and_json) {
    MigrationReport r;
    r.record(sub("old", "192.0.2.1", 25, "LOGIN", "TLSv1.0"), 0);
    r.record(sub("new,\"quoted\"", "192.0.2.2", 465, "PLAIN", "TLSv1.3"), kDay);
    const std::string t = r.recordsText({});
    BOOST_TEST(contains(t, "Submissions through the intercepted ports: 2 (port 25: 1, port 465: 1)\n"));
    BOOST_TEST(contains(t, "Records (user, client address, dialled port): 2\n"));
    BOOST_TEST(contains(t, "USER          ADDRESS     PORT     COUNT  FIRST SEEN (UTC)     LAST SEEN (UTC)      "
                           "MECH      TLS\n"));
    BOOST_TEST(contains(t, "old           192.0.2.1     25         1  1970-01-01 00:00:00  1970-01-01 00:00:00  "
                           "LOGIN     TLSv1.0\n"));
    BOOST_TEST(t.find("new,") < t.find("old "));  // most recent first
    MigrationFilter f;
    f.port = 25;
    BOOST_TEST(contains(r.recordsText(f), "Records (user, client address, dialled port): 2, shown: 1\n"));
    BOOST_TEST(r.recordsCsv({}) ==
               "user,address,port,count,first_seen_utc,last_seen_utc,mechanism,tls\r\n"
               "\"new,\"\"quoted\"\"\",192.0.2.2,465,1,1970-01-02 00:00:00,1970-01-02 00:00:00,PLAIN,TLSv1.3\r\n"
               "old,192.0.2.1,25,1,1970-01-01 00:00:00,1970-01-01 00:00:00,LOGIN,TLSv1.0\r\n");
    BOOST_TEST(r.recordsCsv(f) ==
               "user,address,port,count,first_seen_utc,last_seen_utc,mechanism,tls\r\n"
               "old,192.0.2.1,25,1,1970-01-01 00:00:00,1970-01-01 00:00:00,LOGIN,TLSv1.0\r\n");
    const std::string j = r.json({}, kDay + 5);
    BOOST_TEST(j.rfind("{\"version\": 2, \"generated\": 86405, \"total\": 2, \"total_by_port\": {\"25\": 1, \"465\": 1}, "
                       "\"records\": [{\"user\": \"new,\\\"quoted\\\"\", \"address\": \"192.0.2.2\", \"port\": 465, "
                       "\"count\": 1, \"first\": 86400, \"last\": 86400, \"first_utc\": \"1970-01-02T00:00:00Z\", "
                       "\"last_utc\": \"1970-01-02T00:00:00Z\", \"mechanism\": \"PLAIN\", \"tls\": \"TLSv1.3\"}, ",
                       0) == 0u);
    BOOST_TEST(contains(j, "\"history_days\": 90, \"history\": [{\"day\": \"1970-01-02\", \"port\": 25, \"users\": 0, "
                           "\"submissions\": 0}, {\"day\": \"1970-01-02\", \"port\": 465, \"users\": 1, "
                           "\"submissions\": 1}, {\"day\": \"1970-01-01\", \"port\": 25, \"users\": 1, "
                           "\"submissions\": 1}, {\"day\": \"1970-01-01\", \"port\": 465, \"users\": 0, "
                           "\"submissions\": 0}]}"));
    MigrationQuery q;
    q.format = MigrationFormat::Csv;
    BOOST_TEST(r.render(q, kDay) == r.recordsCsv({}));
    q.history = true;
    BOOST_TEST(r.render(q, kDay) == r.historyCsv({}, kDay));
    q.format = MigrationFormat::Json;
    BOOST_TEST(r.render(q, kDay) == r.json({}, kDay) + "\n");
}

// The per-day table: every day from the oldest kept to today, zeros where nothing came, so a
// port that fell silent shows as 0 rather than as a missing line.
BOOST_AUTO_TEST_CASE(history_table_and_csv_fill_the_days_in_between) {
    MigrationReport r(limits(100, 5));
    r.record(sub("alice", "192.0.2.1", 25), kDay0 + 10);
    r.record(sub("bob", "192.0.2.2", 25), kDay0 + 20);
    r.record(sub("bob", "192.0.2.2", 465), kDay0 + 2 * kDay);
    const std::int64_t now = kDay0 + 3 * kDay + 100;  // a day later, nothing submitted
    const std::string t = r.historyText({}, now);
    BOOST_TEST(t == "Submissions per UTC day through each dialled port (USERS: distinct users that day), "
                    "last 5 days\n"
                    "DAY (UTC)   USERS:25  SUBMISSIONS:25  USERS:465  SUBMISSIONS:465\n"
                    "2026-11-25         0               0          0                0\n"
                    "2026-11-24         0               0          1                1\n"
                    "2026-11-23         0               0          0                0\n"
                    "2026-11-22         2               2          0                0\n");
    MigrationFilter f;
    f.port = 465;
    // From the first day with data through the selected port.
    BOOST_TEST(r.historyCsv(f, now) == "day,port,users,submissions\r\n2026-11-25,465,0,0\r\n2026-11-24,465,1,1\r\n");
    f = {};
    f.since = kDay0 + 2 * kDay;
    BOOST_TEST(r.historyRows(f, now).size() == 4u);  // two days, two ports
    // Later than history_days: the old days fall off the table even before the next record.
    BOOST_TEST(!contains(r.historyText({}, kDay0 + 5 * kDay), "2026-11-22"));
    BOOST_TEST(contains(MigrationReport().historyText({}, now), "(nothing submitted in that time)"));
}

BOOST_AUTO_TEST_CASE(port_figures_for_metrics) {
    MigrationReport r;
    r.record(sub("alice", "192.0.2.1", 25), kDay0 + 1);
    r.record(sub("bob", "192.0.2.2", 25), kDay0 + 2);
    r.record(sub("bob", "192.0.2.2", 25), kDay0 + 3);
    r.record(sub("carol", "192.0.2.3", 10025), kDay0 + 4);
    auto figures = r.portFigures(kDay0 + 5);
    BOOST_REQUIRE(figures.size() == 3u);
    BOOST_TEST(figures[0].port == 25);
    BOOST_TEST(figures[0].usersToday == 2u);
    BOOST_TEST(figures[0].submissions == 3u);
    BOOST_TEST(figures[1].port == 465);  // present at 0 before anything came through it
    BOOST_TEST(figures[1].usersToday == 0u);
    BOOST_TEST(figures[2].port == 10025);
    figures = r.portFigures(kDay0 + kDay);  // after midnight: nobody yet today
    BOOST_TEST(figures[0].usersToday == 0u);
    BOOST_TEST(figures[0].submissions == 3u);
    const std::string text = renderMigrationPrometheus(r.portFigures(kDay0 + 5));
    BOOST_TEST(contains(text, "# TYPE subproxy_migration_users gauge\nsubproxy_migration_users{port=\"25\"} 2\n"
                              "subproxy_migration_users{port=\"465\"} 0\n"));
    BOOST_TEST(contains(text, "# TYPE subproxy_migration_submissions_total counter\n"
                              "subproxy_migration_submissions_total{port=\"25\"} 3\n"));
}

BOOST_AUTO_TEST_CASE(days_and_report_times) {
    BOOST_TEST(utcDay(0) == 0);
    BOOST_TEST(utcDay(kDay - 1) == 0);
    BOOST_TEST(utcDay(-1) == -1);
    BOOST_TEST(utcDay(kDay0 + 5) == 20779);
    BOOST_TEST(formatDay(20779) == "2026-11-22");
    BOOST_TEST(*parseDay("2026-11-22") == 20779);
    BOOST_TEST(*parseDay("1970-01-01") == 0);
    BOOST_TEST(*parseDay("2024-02-29") == *parseDay("2024-03-01") - 1);
    BOOST_TEST(*parseDay("2000-03-01") - *parseDay("2000-02-28") == 2);
    for (std::int64_t d = 0; d < 40000; d += 37) {
        BOOST_TEST(*parseDay(formatDay(d)) == d);
    }
    BOOST_TEST(!parseDay("2023-02-29"));
    BOOST_TEST(!parseDay("2026-13-01"));
    BOOST_TEST(!parseDay("2026-1-01"));
    BOOST_TEST(!parseDay("1969-12-31"));
    BOOST_TEST(!parseDay("2026-11-22x"));
    BOOST_TEST(*parseReportTime("30", kDay0) == kDay0 - 30 * kDay);
    BOOST_TEST(*parseReportTime("0", kDay0) == kDay0);
    BOOST_TEST(*parseReportTime("2026-11-01", kDay0) == kDay0 - 21 * kDay);
    BOOST_TEST(!parseReportTime("-3", kDay0));
    BOOST_TEST(!parseReportTime("36501", kDay0));
    BOOST_TEST(!parseReportTime("3d", kDay0));
    BOOST_TEST(!parseReportTime("", kDay0));
}

BOOST_AUTO_TEST_CASE(parse_errors_name_the_line) {
    std::string error;
    BOOST_TEST(!MigrationReport::parse("hello\n", {}, &error));
    BOOST_TEST(contains(error, "line 1"));
    BOOST_TEST(!MigrationReport::parse("subproxy-migration 2\nR alice x 25 1 1 -\n", {}, &error));
    BOOST_TEST(error == "line 2: malformed record");
    BOOST_TEST(!MigrationReport::parse("subproxy-migration 2\nR alice x 70000 1 1 1 - -\n", {}, &error));
    BOOST_TEST(error == "line 2: malformed record");
    BOOST_TEST(!MigrationReport::parse("subproxy-migration 2\ntoday 2026-11-22\nR al%zz x 25 1 1 1 - -\n", {},
                                       &error));
    BOOST_TEST(error == "line 3: bad %-escape");
    BOOST_TEST(!MigrationReport::parse("subproxy-migration 2\nH 2026-02-30 25 1 1\n", {}, &error));
    BOOST_TEST(error == "line 2: malformed history line");
    BOOST_TEST(!MigrationReport::parse("subproxy-migration 2\ntoday yesterday\n", {}, &error));
    BOOST_TEST(error == "line 2: bad day");
    BOOST_TEST(!MigrationReport::parse("subproxy-migration 2\nU alice 1 1 1 -\n", {}, &error));
    BOOST_TEST(error == "line 2: unknown line \"U\"");
    BOOST_TEST(!MigrationReport::parse("subproxy-migration 1\nU alice x 1 1 -\n", {}, &error));
    BOOST_TEST(error == "line 2: malformed entry");
    BOOST_TEST(MigrationReport::parse("", {}, &error).has_value());
}

BOOST_AUTO_TEST_CASE(parse_trims_to_the_bounds) {
    std::string error;
    auto r = MigrationReport::parse("subproxy-migration 2\ntoday 2026-11-22\n"
                                    "R a x 25 1 1 1 - -\nR b x 25 1 2 2 - -\nR c x 25 1 3 3 - -\n"
                                    "H 2026-11-20 25 1 1\nH 2026-11-21 25 1 1\nH 2026-11-22 25 1 1\n",
                                    limits(2, 2), &error);
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->records().size() == 2u);
    BOOST_TEST(r->records().count({"a", "x", 25}) == 0u);
    BOOST_TEST(r->history().size() == 2u);
    BOOST_TEST(r->history().count({20777, 25}) == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
