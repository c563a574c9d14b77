#include <boost/test/unit_test.hpp>

#include <string>

#include "migration_report.h"

using namespace subproxy;

namespace {
bool contains(const std::string& h, const std::string& n) { return h.find(n) != std::string::npos; }
}  // namespace

BOOST_AUTO_TEST_SUITE(migration_report)

BOOST_AUTO_TEST_CASE(counts_first_last_and_other) {
    MigrationReport r;
    r.record("alice", "192.0.2.1", 1000);
    r.record("alice", "192.0.2.2", 2000);
    r.record("", "192.0.2.1", 3000);  // unknown user: only the address table
    BOOST_TEST(r.total() == 3u);
    BOOST_TEST(r.users().size() == 1u);
    const auto& a = r.users().at("alice");
    BOOST_TEST(a.count == 2u);
    BOOST_TEST(a.first == 1000);
    BOOST_TEST(a.last == 2000);
    BOOST_TEST(a.other == "192.0.2.2");
    BOOST_TEST(r.addresses().at("192.0.2.1").count == 2u);
    BOOST_TEST(r.addresses().at("192.0.2.1").other == "");
    BOOST_TEST(r.dirty());
}

BOOST_AUTO_TEST_CASE(lru_eviction_keeps_the_most_recent) {
    MigrationReport r(2);
    r.record("a", "x", 10);
    r.record("b", "x", 20);
    r.record("a", "x", 30);  // a is now the most recent
    r.record("c", "x", 40);  // evicts b
    BOOST_TEST(r.users().size() == 2u);
    BOOST_TEST(r.users().count("a") == 1u);
    BOOST_TEST(r.users().count("b") == 0u);
    BOOST_TEST(r.users().count("c") == 1u);
    r.setMaxEntries(1);
    BOOST_TEST(r.users().size() == 1u);
    BOOST_TEST(r.users().count("c") == 1u);
}

BOOST_AUTO_TEST_CASE(state_file_round_trip_with_odd_names) {
    MigrationReport r;
    r.record("john doe%@example.com", "2001:db8::1", 5);
    r.record("-", "192.0.2.9", 6);
    r.record("tab\there\n", "192.0.2.9", 7);
    const std::string text = r.serialize();
    BOOST_TEST(text.rfind("subproxy-migration 1\ntotal 3\n", 0) == 0u);
    BOOST_TEST(contains(text, "U john%20doe%25@example.com 1 5 5 2001:db8::1 -\n"));
    std::string error;
    auto back = MigrationReport::parse(text, 100, &error);
    BOOST_REQUIRE(back.has_value());
    BOOST_TEST(back->serialize() == text);
    BOOST_TEST(back->users().count("-") == 1u);
    BOOST_TEST(back->users().count("tab\there\n") == 1u);
    BOOST_TEST(!back->dirty());
}

// Issue 7: the help desk sees which TLS version each user (and address) came with last.
BOOST_AUTO_TEST_CASE(tls_version_recorded_shown_and_kept) {
    MigrationReport r;
    r.record("alice", "192.0.2.1", 1000, "TLSv1.0");
    r.record("bob", "192.0.2.2", 2000, "TLSv1.3");
    r.record("alice", "192.0.2.1", 3000, "TLSv1.2");  // upgraded her mail program
    BOOST_TEST(r.users().at("alice").tls == "TLSv1.2");
    BOOST_TEST(r.users().at("bob").tls == "TLSv1.3");
    BOOST_TEST(r.addresses().at("192.0.2.2").tls == "TLSv1.3");
    const std::string text = r.serialize();
    BOOST_TEST(contains(text, "U alice 2 1000 3000 192.0.2.1 TLSv1.2\n"));
    BOOST_TEST(contains(text, "A 192.0.2.2 1 2000 2000 bob TLSv1.3\n"));
    std::string error;
    auto back = MigrationReport::parse(text, 100, &error);
    BOOST_REQUIRE(back.has_value());
    BOOST_TEST(back->users().at("bob").tls == "TLSv1.3");
    BOOST_TEST(back->serialize() == text);
    const std::string t = r.table();
    BOOST_TEST(contains(t, "TLS"));
    BOOST_TEST(contains(t, "  TLSv1.3  192.0.2.2\n"));
    BOOST_TEST(contains(r.json(), "\"user\": \"bob\", \"count\": 1, \"first\": 2000, \"last\": 2000, "
                                  "\"tls\": \"TLSv1.3\", \"last_client\": \"192.0.2.2\"}"));
}

// A state file written before the TLS field existed still loads (upgrade keeps the counts).
BOOST_AUTO_TEST_CASE(state_file_without_tls_field_loads) {
    std::string error;
    auto r = MigrationReport::parse("subproxy-migration 1\ntotal 3\nU alice 3 5 9 192.0.2.1\n"
                                    "A 192.0.2.1 3 5 9 alice\n",
                                    10, &error);
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->users().at("alice").count == 3u);
    BOOST_TEST(r->users().at("alice").tls == "");
    BOOST_TEST(r->total() == 3u);
    BOOST_TEST(contains(r->serialize(), "U alice 3 5 9 192.0.2.1 -\n"));
    BOOST_TEST(contains(r->json(), "\"tls\": \"\""));
}

BOOST_AUTO_TEST_CASE(parse_errors_name_the_line) {
    std::string error;
    BOOST_TEST(!MigrationReport::parse("hello\n", 10, &error));
    BOOST_TEST(contains(error, "line 1"));
    BOOST_TEST(!MigrationReport::parse("subproxy-migration 1\nU alice x 1 1 -\n", 10, &error));
    BOOST_TEST(error == "line 2: malformed entry");
    BOOST_TEST(!MigrationReport::parse("subproxy-migration 1\nU al%zz 1 1 1 -\n", 10, &error));
    BOOST_TEST(error == "line 2: bad %-escape");
    BOOST_TEST(!MigrationReport::parse("subproxy-migration 1\nU al%4 1 1 1 -\n", 10, &error));
    BOOST_TEST(!MigrationReport::parse("subproxy-migration 1\nU alice 1 1 1 - TLS%zz\n", 10, &error));
    BOOST_TEST(error == "line 2: bad %-escape");
    BOOST_TEST(MigrationReport::parse("", 10, &error).has_value());
}

BOOST_AUTO_TEST_CASE(parse_trims_to_the_bound) {
    std::string error;
    auto r = MigrationReport::parse("subproxy-migration 1\nU a 1 1 1 -\nU b 1 2 2 -\nU c 1 3 3 -\n", 2, &error);
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->users().size() == 2u);
    BOOST_TEST(r->users().count("a") == 0u);
}

BOOST_AUTO_TEST_CASE(table_and_json_most_recent_first) {
    MigrationReport r;
    r.record("old", "192.0.2.1", 0);
    r.record("new", "192.0.2.2", 86400);
    const std::string t = r.table();
    BOOST_TEST(contains(t, "Submissions through the intercepted ports: 2\n"));
    BOOST_TEST(t.find("new ") < t.find("old "));
    BOOST_TEST(contains(t, "1970-01-02 00:00:00"));
    BOOST_TEST(contains(r.json(), "\"users\": [{\"user\": \"new\", \"count\": 1, \"first\": 86400"));
    BOOST_TEST(formatTime(0) == "1970-01-01 00:00:00");
}

BOOST_AUTO_TEST_SUITE_END()
