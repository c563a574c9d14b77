// Compromised accounts (issue 12): the counters' windows, the book (holds, logins, flags, the
// state file) and the policy's verdicts.  Time is injected: no clock.
#include <boost/test/unit_test.hpp>

#include "defence/account_book.h"
#include "defence/account_policy.h"
#include "defence/account_window.h"

using namespace subproxy;

namespace {

AccountsConfig limitsConfig(unsigned messages, unsigned recipients, int window = 3600) {
    AccountsConfig c;
    c.limits.enabled = true;
    c.limits.window = window;
    c.limits.perUser = {messages, recipients};
    return c;
}

AccountsConfig placesConfig(unsigned maxAddresses, PlacesAction action) {
    AccountsConfig c;
    c.places.enabled = true;
    c.places.window = 86400;
    c.places.maxAddresses = maxAddresses;
    c.places.maxDestinations = 0;  // off
    c.places.action = action;
    return c;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(account_window)

BOOST_AUTO_TEST_CASE(count_forgets_after_the_window_and_never_before) {
    WindowCount w;
    const int window = 3600;  // buckets of 300 s
    w.add(1000, window);
    w.add(1100, window, 2);
    BOOST_TEST(w.count(1100, window) == 3u);
    BOOST_TEST(w.buckets().size() == 1u);  // same bucket
    w.add(1400, window);                   // a new bucket (1000 + 300 <= 1400)
    BOOST_TEST(w.buckets().size() == 2u);
    // Still counted a full window after the last event of the first bucket (1100 + 3600).
    BOOST_TEST(w.count(1100 + window, window) == 4u);
    // Gone once the first bucket's slot has fully left the window.
    BOOST_TEST(w.count(1000 + 300 + window, window) == 1u);
    BOOST_TEST(w.count(1400 + 300 + window, window) == 0u);
    w.prune(1400 + 300 + window, window);
    BOOST_TEST(w.empty());
}

BOOST_AUTO_TEST_CASE(count_memory_is_bounded_by_the_slots) {
    WindowCount w;
    for (std::int64_t t = 0; t < 100000; t += 7) {
        w.add(t, 3600);
    }
    BOOST_TEST(w.buckets().size() <= static_cast<std::size_t>(WindowCount::kSlots + 1));
    // About one window of events (3600/7), counted conservatively (up to one slot more).
    const unsigned n = w.count(100000, 3600);
    BOOST_TEST(n >= 3600u / 7);
    BOOST_TEST(n <= 3900u / 7 + 1);
}

BOOST_AUTO_TEST_CASE(recent_set_counts_distinct_keys_in_the_window) {
    RecentSet s;
    s.see("192.0.2.1", 100, 16);
    s.see("192.0.2.2", 200, 16);
    s.see("192.0.2.1", 300, 16);  // seen again: still one
    BOOST_TEST(s.count(300, 1000) == 2u);
    BOOST_TEST(s.list(300, 1000) == "192.0.2.1, 192.0.2.2");
    BOOST_TEST(s.count(1250, 1000) == 1u);  // .2 last seen at 200: out of the window
    s.prune(1250, 1000);
    BOOST_TEST(s.entries().size() == 1u);
    BOOST_TEST(s.entries()[0].first == 100);
    for (int i = 0; i < 50; ++i) {
        s.see("k" + std::to_string(i), 2000 + i, 16);
    }
    BOOST_TEST(s.entries().size() == 16u);  // bounded; the least recently seen went
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(account_book)

BOOST_AUTO_TEST_CASE(held_counts_until_settled_and_only_accepted_stays) {
    const AccountsConfig c = limitsConfig(2, 3);
    AccountBook book(c);
    book.hold("alice", SendingKind::Recipient, 10);
    book.hold("alice", SendingKind::Recipient, 10);
    BOOST_TEST(book.view("alice", 10).recipients == 2u);
    book.settle("alice", SendingKind::Recipient, false, 11);  // the MSA refused it
    book.settle("alice", SendingKind::Recipient, true, 11);
    BOOST_TEST(book.view("alice", 11).recipients == 1u);
    BOOST_TEST(book.view("bob", 11).recipients == 0u);
    BOOST_TEST(book.view("alice", 11 + 3600 + 300).recipients == 0u);  // the window passed
}

BOOST_AUTO_TEST_CASE(limit_refuses_at_the_count_and_overrides_win) {
    AccountsConfig c = limitsConfig(2, 500);
    c.limits.overrides["bulk"] = {0, 0};  // no limit
    AccountBook book(c);
    for (int i = 0; i < 2; ++i) {
        BOOST_TEST(!checkSending(c, book.view("alice", 100), SendingKind::Message));
        book.hold("alice", SendingKind::Message, 100);
        book.settle("alice", SendingKind::Message, true, 100);
    }
    const auto refusal = checkSending(c, book.view("alice", 100), SendingKind::Message);
    BOOST_REQUIRE(refusal);
    BOOST_TEST(refusal->count == 2u);
    BOOST_TEST(refusal->limit == 2u);
    for (int i = 0; i < 5; ++i) {
        book.hold("bulk", SendingKind::Message, 100);
        book.settle("bulk", SendingKind::Message, true, 100);
    }
    BOOST_TEST(!checkSending(c, book.view("bulk", 100), SendingKind::Message));
}

BOOST_AUTO_TEST_CASE(many_places_flag_once_and_refuse_until_cleared) {
    const AccountsConfig c = placesConfig(2, PlacesAction::Refuse);
    AccountBook book(c);
    BOOST_TEST(book.login("alice", "192.0.2.1", "198.51.100.1", 100).raised.empty());
    BOOST_TEST(book.login("alice", "192.0.2.2", "198.51.100.1", 110).raised.empty());
    BOOST_TEST(book.login("alice", "192.0.2.1", "198.51.100.1", 120).raised.empty());  // not a new place
    const auto third = book.login("alice", "2001:db8:1:2::/64", "198.51.100.1", 130);
    BOOST_REQUIRE(third.raised.size() == 1u);
    BOOST_TEST(flagReasonName(third.raised[0].reason) == "many_addresses");
    BOOST_TEST(third.raised[0].evidence == "3 addresses in 86400s (max 2): 2001:db8:1:2::/64, 192.0.2.1, 192.0.2.2");
    BOOST_TEST(refusesLogin(c, third.view));
    BOOST_TEST(book.login("alice", "192.0.2.9", "198.51.100.1", 140).raised.empty());  // flagged once
    BOOST_TEST(!refusesLogin(c, book.login("bob", "192.0.2.9", "198.51.100.1", 140).view));
    BOOST_TEST(book.clear("alice"));
    BOOST_TEST(!book.clear("alice"));
    BOOST_TEST(!refusesLogin(c, book.login("alice", "192.0.2.10", "198.51.100.1", 150).view));
}

BOOST_AUTO_TEST_CASE(places_limit_lowers_the_sending_limit_while_flagged) {
    AccountsConfig c = placesConfig(1, PlacesAction::Limit);
    c.places.limited = {1, 0};
    AccountBook book(c);
    book.login("alice", "192.0.2.1", "d", 100);
    BOOST_TEST(effectiveLimit(c, book.view("alice", 100)).messages == 0u);  // no limits group: none
    book.login("alice", "192.0.2.2", "d", 100);
    BOOST_TEST(effectiveLimit(c, book.view("alice", 100)).messages == 1u);
}

BOOST_AUTO_TEST_CASE(state_file_round_trip_keeps_counts_places_and_flags) {
    AccountsConfig c = limitsConfig(5, 5);
    c.places = placesConfig(1, PlacesAction::Flag).places;
    AccountBook book(c);
    book.hold("al ice%", SendingKind::Message, 100);
    book.settle("al ice%", SendingKind::Message, true, 100);
    book.hold("al ice%", SendingKind::Recipient, 100);  // held: not saved
    book.login("al ice%", "192.0.2.1", "198.51.100.1", 100);
    book.login("al ice%", "192.0.2.2", "198.51.100.1", 101);
    book.flag("al ice%", FlagReason::WeakPassword, 0, "dictionary word", 102);
    const std::string text = book.serialise(103);
    BOOST_TEST(text.find("user al%20ice%25 ") != std::string::npos);
    AccountBook loaded(c);
    std::string error;
    BOOST_REQUIRE_MESSAGE(loaded.load(text, 104, &error), error);
    BOOST_TEST(loaded.serialise(104) == text);
    const AccountView v = loaded.view("al ice%", 104);
    BOOST_TEST(v.messages == 1u);
    BOOST_TEST(v.recipients == 0u);
    BOOST_TEST(v.placesFlagged);
    BOOST_TEST(v.weakPassword);
    const auto flagged = loaded.flagged();
    BOOST_REQUIRE(flagged.size() == 1u);
    BOOST_TEST(flagged[0].flags.size() == 2u);
    BOOST_TEST(!loaded.load("subproxy-accounts 1\nmsg 1 2\n", 104, &error));
    BOOST_TEST(error == "line 2: \"msg\" before any user line");
    BOOST_TEST(!loaded.load("garbage\n", 104, &error));
}

BOOST_AUTO_TEST_CASE(max_users_evicts_the_idle_not_the_flagged) {
    AccountsConfig c = limitsConfig(5, 5);
    c.maxUsers = 3;
    AccountBook book(c);
    book.flag("flagged", FlagReason::SendingLimit, 5, "messages=5", 1);
    for (int i = 0; i < 10; ++i) {
        const std::string u = "u" + std::to_string(i);
        book.hold(u, SendingKind::Message, 10 + i);
        book.settle(u, SendingKind::Message, true, 10 + i);
    }
    BOOST_TEST(book.accounts() <= 3u);
    BOOST_TEST(book.flagged().size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(account_policy)

BOOST_AUTO_TEST_CASE(refusal_text_says_what_and_whom_to_contact) {
    AccountsConfig c = limitsConfig(100, 500);
    c.contact = "Call 0800 555 0100.";
    const std::string text = sendingRefusalText(c, {SendingKind::Recipient, 500, 500});
    BOOST_TEST(text.find("500 recipients per 1 hour") != std::string::npos);
    BOOST_TEST(text.find("Call 0800 555 0100.") != std::string::npos);
    BOOST_TEST(text.size() + 10 <= 500u);
    BOOST_TEST(sendingRefusalFacts(c, {SendingKind::Message, 100, 100}) == "messages=100 limit=100 window=3600s");
    BOOST_TEST(humanDuration(90) == "90 seconds");
    BOOST_TEST(humanDuration(86400) == "1 day");
}

BOOST_AUTO_TEST_CASE(weak_passwords) {
    using P = PasswordQuality::Problem;
    BOOST_TEST(judgePassword({P::Dictionary, 0}, "password1", "alice", 50).weak);
    BOOST_TEST(judgePassword({P::None, 40}, "x", "alice", 50).why == "score 40 below min_score 50");
    BOOST_TEST(judgePassword({P::None, 100}, "My-Alice-2024!", "alice@example.com", 50).why ==
               "contains the user name");
    BOOST_TEST(!judgePassword({P::None, 100}, "h7Gq2Lp9Zx4Rt8Vb1Nc6", "alice", 50).weak);
    BOOST_TEST(!judgePassword({P::None, 100}, "h7Gq2Lp9Zx4Rt8Vb1Nc6", "al", 50).weak);  // 2 letters: no check
}

BOOST_AUTO_TEST_CASE(overrides_file) {
    std::string error;
    const auto o = parseLimitOverrides("# who  messages recipients\nBulk 0 0\nalice - 50  # more\n\n", {100, 500},
                                       &error);
    BOOST_REQUIRE(o);
    BOOST_TEST(o->at("bulk").messages == 0u);
    BOOST_TEST(o->at("alice").messages == 100u);
    BOOST_TEST(o->at("alice").recipients == 50u);
    BOOST_TEST(!parseLimitOverrides("alice 10\n", {100, 500}, &error));
    BOOST_TEST(error.rfind("line 1: ", 0) == 0);
    BOOST_TEST(!parseLimitOverrides("alice x 10\n", {100, 500}, &error));
}

BOOST_AUTO_TEST_SUITE_END()
