// Compromised accounts across gateways (fleet_accounts.h, account_book_fleet.cpp): the fleet
// counters' window against the local one, what the book adopts from the fleet, the scripts'
// keys and arguments, their replies, and the messages on the events channel.  No clock, no
// Redis: time is injected and the replies are built by hand (test_shared_accounts.py runs the
// scripts on a real Redis).
#include <boost/test/unit_test.hpp>

#include <map>
#include <random>

#include "defence/account_book.h"
#include "defence/account_policy.h"
#include "defence/account_window.h"
#include "defence/fleet_accounts.h"
#include "redis_values.h"

using namespace subproxy;
using subproxy::test::array;
using subproxy::test::integer;
using subproxy::test::string;

namespace {

AccountsConfig limitsConfig(unsigned messages) {
    AccountsConfig c;
    c.limits.enabled = true;
    c.limits.window = 3600;
    c.limits.perUser = {messages, 0};
    return c;
}

AccountsConfig placesConfig(unsigned maxAddresses) {
    AccountsConfig c;
    c.places.enabled = true;
    c.places.window = 86400;
    c.places.maxAddresses = maxAddresses;
    c.places.maxDestinations = 0;
    c.places.action = PlacesAction::Refuse;
    return c;
}

// What the count script does to one hash (fleet_accounts.cpp, kFleetCountScript), in C++.
struct FleetHash {
    std::map<std::int64_t, unsigned> fields;
    void add(std::int64_t now, int window, unsigned n) {
        const FleetWindow w = fleetWindow(now, window);
        for (auto it = fields.begin(); it != fields.end();) {
            it = it->first <= w.deadUpTo ? fields.erase(it) : std::next(it);
        }
        fields[w.bucket] += n;
    }
    std::vector<std::pair<std::int64_t, unsigned>> buckets() const { return {fields.begin(), fields.end()}; }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(fleet_window)

BOOST_AUTO_TEST_CASE(buckets_are_aligned_on_the_clock_and_die_by_the_local_rule) {
    const int window = 3600;  // slots of 300 s, as WindowCount's
    const FleetWindow w = fleetWindow(1000, window);
    BOOST_TEST(w.bucket == 900);                  // every gateway puts second 1000 into bucket 900
    BOOST_TEST(fleetWindow(1199, window).bucket == 900);
    BOOST_TEST(fleetWindow(1200, window).bucket == 1200);
    BOOST_TEST(w.ttl == 3900);                    // the newest bucket lives window + slot
    // Exactly WindowCount::live: a bucket is dropped when it holds only forgotten events.
    for (std::int64_t start = -6000; start <= 1000; start += 100) {
        BOOST_TEST((start > w.deadUpTo) == WindowCount::live(start, 1000, window));
    }
    BOOST_TEST(fleetWindow(5, 1).bucket == 5);    // a window under 12 s: slots of 1 s
}

BOOST_AUTO_TEST_CASE(fleet_count_keeps_the_local_windows_guarantee) {
    // Two gateways' events at random times (fixed seed) into one fleet hash; at each check the
    // fleet's count, read back into a WindowCount as the book keeps it, counts every event of
    // the last window and none older than window + slot: the local counter's guarantee.
    const int window = 600;
    const std::int64_t slot = WindowCount::slot(window);
    std::mt19937 random(12);
    std::uniform_int_distribution<int> gap(0, 40);
    FleetHash fleet;
    std::vector<std::int64_t> events;
    std::int64_t now = 1767225600;
    for (int i = 0; i < 2000; ++i) {
        now += gap(random);
        fleet.add(now, window, 1);
        events.push_back(now);
        WindowCount adopted;
        adopted.assign(fleet.buckets());
        const std::int64_t later = now + gap(random) * 20;  // the figure decays between updates
        const unsigned n = adopted.count(later, window);
        unsigned inWindow = 0, inWindowAndSlot = 0;
        for (std::int64_t t : events) {
            inWindow += t > later - window ? 1 : 0;
            inWindowAndSlot += t > later - window - slot ? 1 : 0;
        }
        BOOST_TEST_REQUIRE(n >= inWindow);
        BOOST_TEST_REQUIRE(n <= inWindowAndSlot);
    }
    BOOST_TEST(fleet.fields.size() <= static_cast<std::size_t>(WindowCount::kSlots + 2));  // bounded
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(fleet_book)

BOOST_AUTO_TEST_CASE(view_counts_the_higher_of_local_and_fleet_never_lower) {
    AccountBook book(limitsConfig(3));
    const std::int64_t t = 1767225600;
    book.settle("alice", SendingKind::Message, true, t);  // one here
    FleetCounts fleet;
    fleet.messages = {{fleetWindow(t, 3600).bucket, 2}};   // two in the fleet, this one included
    book.adoptCounts("alice", &fleet, 0, 0, t);
    BOOST_TEST(book.view("alice", t).messages == 2u);
    // Sent to the fleet, its answer not back yet: counted on top of the fleet's figure.
    book.settle("alice", SendingKind::Message, true, t + 1);
    book.fleetSent("alice", 1, 0, t + 1);
    BOOST_TEST(book.view("alice", t + 1).messages == 3u);
    BOOST_TEST(checkSending(book.config(), book.view("alice", t + 1), SendingKind::Message).has_value());
    // The answer includes it; no answer (Redis down) leaves the last figure.
    fleet.messages = {{fleetWindow(t, 3600).bucket, 3}};
    book.adoptCounts("alice", &fleet, 1, 0, t + 2);
    BOOST_TEST(book.view("alice", t + 2).messages == 3u);
    book.fleetSent("alice", 1, 0, t + 3);
    book.adoptCounts("alice", nullptr, 1, 0, t + 3);
    BOOST_TEST(book.view("alice", t + 3).messages == 3u);
    // A fleet that knows less (Redis restarted empty) lowers nothing.
    FleetCounts empty;
    book.adoptCounts("alice", &empty, 0, 0, t + 4);
    BOOST_TEST(book.view("alice", t + 4).messages == 2u);  // the local two
    // The fleet's figure decays on its own: a refused account is not held back for ever.
    book.adoptCounts("alice", &fleet, 0, 0, t + 5);
    BOOST_TEST(book.view("alice", t + 3600 + 300).messages == 0u);
    BOOST_TEST(book.view("bob", t).messages == 0u);
}

BOOST_AUTO_TEST_CASE(fleet_places_flag_past_the_maximum_with_the_fleets_evidence) {
    AccountBook book(placesConfig(2));
    const std::int64_t t = 1767225600;
    book.login("alice", "192.0.2.1", "198.51.100.25", t);
    FleetPlaces places{2, 1, {}, {}};
    BOOST_TEST(book.adoptPlaces("alice", places, t).empty());  // at the maximum: nothing
    places = FleetPlaces{3, 1, {"192.0.2.1", "192.0.2.9", "192.0.2.8"}, {}};
    const auto raised = book.adoptPlaces("alice", places, t);
    BOOST_TEST_REQUIRE(raised.size() == 1u);
    BOOST_TEST(static_cast<int>(raised[0].reason) == static_cast<int>(FlagReason::ManyAddresses));
    BOOST_TEST(raised[0].count == 3u);
    BOOST_TEST(raised[0].evidence ==
               "3 addresses in 86400s on all gateways (max 2): 192.0.2.1, 192.0.2.9, 192.0.2.8");
    BOOST_TEST(refusesLogin(book.config(), book.view("alice", t)));
    BOOST_TEST(book.adoptPlaces("alice", places, t + 1).empty());  // flagged once
    BOOST_TEST(book.flagged().size() == 1u);
    // Not past this gateway's own count: login() judged it with the local evidence.
    AccountBook local(placesConfig(2));
    for (const char* a : {"192.0.2.1", "192.0.2.2", "192.0.2.3"}) {
        local.login("bob", a, "198.51.100.25", t);
    }
    BOOST_TEST(local.flagged().size() == 1u);
    BOOST_TEST(local.adoptPlaces("bob", FleetPlaces{3, 1, {"x"}, {}}, t).empty());
    BOOST_TEST(local.flagged()[0].flags[0].evidence.find("on all gateways") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(adopted_flags_merge_and_clear_forgets_the_fleets_figures) {
    AccountBook book(placesConfig(2));
    const AccountFlag flag{FlagReason::ManyAddresses, 100, 200, 3, "3 addresses"};
    BOOST_TEST(book.adoptFlag("alice", flag, 300));
    BOOST_TEST(!book.adoptFlag("alice", AccountFlag{FlagReason::ManyAddresses, 50, 250, 4, "other"}, 300));
    const auto flagged = book.flagged();
    BOOST_TEST_REQUIRE(flagged.size() == 1u);
    BOOST_TEST(flagged[0].flags[0].first == 50);
    BOOST_TEST(flagged[0].flags[0].last == 250);
    BOOST_TEST(flagged[0].flags[0].count == 4u);
    BOOST_TEST(book.view("alice", 300).placesFlagged);
    FleetCounts fleet;
    fleet.messages = {{fleetWindow(300, 3600).bucket, 7}};
    book.adoptCounts("alice", &fleet, 0, 0, 300);
    BOOST_TEST(book.clear("alice"));
    BOOST_TEST(!book.view("alice", 300).placesFlagged);
    BOOST_TEST(book.view("alice", 300).messages == 0u);
}

BOOST_AUTO_TEST_CASE(reconnecting_takes_the_fleets_flags_and_drops_those_cleared_meanwhile) {
    AccountBook book(placesConfig(2));
    for (const char* a : {"192.0.2.1", "192.0.2.2", "192.0.2.3"}) {
        book.login("alice", a, "198.51.100.25", 100);  // flagged here at 100
    }
    book.flag("bob", FlagReason::WeakPassword, 0, "dictionary word", 100);
    book.flag("bob", FlagReason::SendingLimit, 3, "messages=3 limit=3 window=3600s", 100);
    book.flag("dave", FlagReason::WeakPassword, 0, "too short", 995);  // its update not in Redis yet
    book.flag("frank", FlagReason::WeakPassword, 0, "too short", 100);  // before this gateway joined
    book.flag("gina", FlagReason::WeakPassword, 0, "too short", 600);   // again since her clear
    book.clearDirty();
    // Redis lists bob's sending limit, carol's flag from another gateway, and erin's weak
    // password, which this gateway has just lifted (the unflag not in Redis yet); alice and
    // bob's weak password were cleared while this gateway was not listening.
    const AccountFlag erin{FlagReason::WeakPassword, 90, 95, 0, "too short"};
    const std::vector<FlaggedAccount> fleet{
        {"bob", {AccountFlag{FlagReason::SendingLimit, 100, 100, 3, "messages=3 limit=3 window=3600s"}}},
        {"carol", {AccountFlag{FlagReason::ManyAddresses, 90, 95, 3, "3 addresses"}}},
        {"erin", {erin}}};
    const AccountBook::FlagKeys unsent{{"dave", FlagReason::WeakPassword}, {"erin", FlagReason::WeakPassword}};
    const std::map<std::string, std::int64_t> cleared{{"alice", 500}, {"bob", 500}, {"dave", 999}, {"gina", 500}};
    const AccountBook::FlagSync sync = book.reconcileFlags(fleet, cleared, unsent, 1000);
    BOOST_TEST(sync.added == 1u);
    BOOST_TEST(sync.cleared == 2u);
    BOOST_TEST(book.dirty());
    const auto flagged = book.flagged();
    BOOST_TEST_REQUIRE(flagged.size() == 5u);
    BOOST_TEST(flagged[0].user == "bob");
    BOOST_TEST_REQUIRE(flagged[0].flags.size() == 1u);
    BOOST_TEST((flagged[0].flags[0].reason == FlagReason::SendingLimit));
    BOOST_TEST(flagged[1].user == "carol");
    BOOST_TEST(flagged[2].user == "dave");
    BOOST_TEST(flagged[3].user == "frank");
    BOOST_TEST(flagged[4].user == "gina");
    // alice's places went with the flag (as the operator's clear took them from Redis): a
    // fourth address is one place, not four.
    const auto login = book.login("alice", "192.0.2.4", "198.51.100.25", 1000);
    BOOST_TEST(login.addresses == 1u);
    BOOST_TEST(login.raised.empty());
    BOOST_TEST(!login.view.placesFlagged);
    // Once Redis has answered erin's unflag and dave's flag, the list says the same as here.
    const AccountBook::FlagSync again = book.reconcileFlags(fleet, cleared, unsent, 1000);
    BOOST_TEST(again.added == 0u);
    BOOST_TEST(again.cleared == 0u);
    const AccountBook::FlagSync last = book.reconcileFlags(fleet, cleared, {}, 1000);
    BOOST_TEST(last.cleared == 1u);  // dave: cleared at 999 elsewhere, and his flag never reached Redis
    BOOST_TEST(last.added == 1u);    // erin: still flagged in Redis, so flagged elsewhere again
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(fleet_scripts)

BOOST_AUTO_TEST_CASE(calls_name_every_key_and_escape_the_user) {
    const FleetAccountKeys keys("gw1:");
    FleetCountUpdate u;
    u.user = "al ice@example.com";
    u.messages = 1;
    u.limit = {100, 500};
    u.now = 1000;
    u.window = 3600;
    const ScriptCall count = fleetCountCall(keys, u);
    BOOST_TEST(count.keys == (std::vector<std::string>{"gw1:acct:msg:al%20ice@example.com",
                                                       "gw1:acct:rcpt:al%20ice@example.com"}));
    BOOST_TEST(count.args == (std::vector<std::string>{"1", "0", "900", "-2900", "3900", "100", "500", "gw1:events",
                                                       "account-counts al%20ice@example.com"}));
    FleetLogin l{"alice", "2001:db8:1:2::/64", "198.51.100.25", 100000, 86400, 21, 5, 0};
    const ScriptCall login = fleetLoginCall(keys, l);
    BOOST_TEST(login.keys == (std::vector<std::string>{"gw1:acct:addr:alice", "gw1:acct:dest:alice"}));
    BOOST_TEST(login.args == (std::vector<std::string>{"2001:db8:1:2::/64", "198.51.100.25", "100000", "13600",
                                                       "86400", "21", "5", "0"}));
    const ScriptCall flag =
        fleetFlagCall(keys, "alice", AccountFlag{FlagReason::SendingLimit, 10, 20, 3, "messages=3 limit=3"});
    BOOST_TEST(flag.keys == std::vector<std::string>{"gw1:acct:flags"});
    BOOST_TEST(flag.args ==
               (std::vector<std::string>{"alice sending_limit", "10", "20 3 messages=3%20limit=3", "gw1:events"}));
    const ScriptCall clear = fleetClearCall(keys, "alice", true, 3000000);
    BOOST_TEST(clear.keys.size() == 6u);
    BOOST_TEST(clear.keys[3] == "gw1:acct:addr:alice");
    BOOST_TEST(clear.keys[5] == "gw1:acct:cleared");
    // The account's four fields by name: no scan of every flagged account in the script.
    BOOST_TEST(clear.args == (std::vector<std::string>{"alice", "gw1:events", "1", "3000000", "408000", "2592000",
                                                       "alice sending_limit", "alice many_addresses",
                                                       "alice many_destinations", "alice weak_password"}));
    BOOST_TEST(fleetUnflagCall(keys, "alice", FlagReason::WeakPassword).args ==
               (std::vector<std::string>{"alice weak_password", "gw1:events"}));
}

BOOST_AUTO_TEST_CASE(replies_are_read_and_garbage_refused) {
    // Hash fields come back as strings, Lua numbers as integers.
    const auto counts = parseFleetCounts(
        array({array({string("1200"), integer(2), string("900"), integer(1)}), array({})}));
    BOOST_TEST_REQUIRE(counts.has_value());
    BOOST_TEST((counts->messages == std::vector<std::pair<std::int64_t, unsigned>>{{900, 1}, {1200, 2}}));
    BOOST_TEST(counts->recipients.empty());
    BOOST_TEST(!parseFleetCounts(array({array({string("x"), integer(1)}), array({})})));
    BOOST_TEST(!parseFleetCounts(array({array({string("1"), integer(-1)}), array({})})));
    BOOST_TEST(!parseFleetCounts(integer(1)));

    const auto places = parseFleetPlaces(
        array({integer(3), integer(1), array({string("a"), string("b"), string("c")}), array({})}));
    BOOST_TEST_REQUIRE(places.has_value());
    BOOST_TEST(places->addresses == 3u);
    BOOST_TEST((places->addressList == std::vector<std::string>{"c", "b", "a"}));  // most recent first
    BOOST_TEST(!parseFleetPlaces(array({integer(3), integer(1), array({})})));
    // A member that is no address (Redis written by something else) cannot forge a log line.
    const auto odd = parseFleetPlaces(array({integer(1), integer(1),
                                             array({string("192.0.2.1\nwarning: [198.51.100.7]:25: " +
                                                           std::string(200, 'x'))}),
                                             array({})}));
    BOOST_TEST_REQUIRE(odd.has_value());
    BOOST_TEST(odd->addressList[0].find('\n') == std::string::npos);
    BOOST_TEST(odd->addressList[0].size() == 64u);

    const auto flags = parseFleetFlags(array({string("bob many_addresses"), string("10 20 3 3%20addresses"),
                                              string("al%20ice weak_password"), string("5 6 0 dictionary%20word"),
                                              string("bob sending_limit"), string("1 2 3 messages=3")}));
    BOOST_TEST_REQUIRE(flags.has_value());
    BOOST_TEST(flags->unreadable == 0u);
    const auto& flagged = flags->flagged;
    BOOST_TEST_REQUIRE(flagged.size() == 2u);
    BOOST_TEST(flagged[0].user == "al ice");
    BOOST_TEST(flagged[0].flags[0].evidence == "dictionary word");
    BOOST_TEST(flagged[1].user == "bob");
    BOOST_TEST_REQUIRE(flagged[1].flags.size() == 2u);
    BOOST_TEST(static_cast<int>(flagged[1].flags[0].reason) == static_cast<int>(FlagReason::SendingLimit));
    BOOST_TEST(flagged[1].flags[1].first == 10);
    BOOST_TEST(parseFleetFlags(array({}))->flagged.empty());
    BOOST_TEST(!parseFleetFlags(array({string("odd")})));        // not field/value pairs
    BOOST_TEST(!parseFleetFlags(string("ERR wrong type")));
    BOOST_TEST(unreadableFlagsNote(0).empty());
}

BOOST_AUTO_TEST_CASE(an_unreadable_flag_is_left_out_not_the_whole_list) {
    // A reason a newer version added, and a damaged value: the other flags still count, for -a
    // and for a reconnecting gateway, and the ones left out are counted.
    const auto flags = parseFleetFlags(array({string("bob nonsense"), string("1 2 3 x"),
                                              string("carol weak_password"), string("1 2 x"),
                                              string("dave many_addresses"), string("10 20 3 3%20addresses")}));
    BOOST_TEST_REQUIRE(flags.has_value());
    BOOST_TEST(flags->unreadable == 2u);
    BOOST_TEST_REQUIRE(flags->flagged.size() == 1u);
    BOOST_TEST(flags->flagged[0].user == "dave");
    BOOST_TEST(unreadableFlagsNote(2).find("# 2 more flags in Redis") == 0u);
    const auto list = parseFleetFlagList(array({array({string("bob nonsense"), string("1 2 3 x"),
                                                       string("dave many_addresses"), string("10 20 3 x")}),
                                                array({})}));
    BOOST_TEST_REQUIRE(list.has_value());
    BOOST_TEST(list->unreadable == 1u);
    BOOST_TEST(list->flagged.size() == 1u);
}

BOOST_AUTO_TEST_CASE(flag_lists_and_clears_are_read_back) {

    const auto list = parseFleetFlagList(array({array({string("bob many_addresses"), string("10 20 3 x")}),
                                                array({string("al%20ice"), string("500"), string("bob"), string("7")})}));
    BOOST_TEST_REQUIRE(list.has_value());
    BOOST_TEST(list->flagged.size() == 1u);
    BOOST_TEST((list->cleared == std::map<std::string, std::int64_t>{{"al ice", 500}, {"bob", 7}}));
    BOOST_TEST(!parseFleetFlagList(array({array({}), array({string("bob")})})));
    BOOST_TEST(!parseFleetFlagList(array({array({}), array({string("bob"), string("soon")})})));
    BOOST_TEST(!parseFleetFlagList(array({array({})})));
}

BOOST_AUTO_TEST_CASE(events_round_trip_and_others_are_not_account_events) {
    AccountEvent flag;
    flag.kind = AccountEvent::Kind::Flag;
    flag.user = "al ice";
    flag.flag = AccountFlag{FlagReason::ManyAddresses, 10, 20, 3, "3 addresses in 86400s: 192.0.2.1, 100%"};
    const std::string text = formatAccountEvent(flag);
    BOOST_TEST(text == "account-flag al%20ice many_addresses 10 20 3 "
                       "3%20addresses%20in%2086400s:%20192.0.2.1,%20100%25");
    const auto back = parseAccountEvent(text);
    BOOST_TEST_REQUIRE(back.has_value());
    BOOST_TEST(back->user == "al ice");
    BOOST_TEST(back->flag.evidence == flag.flag.evidence);
    BOOST_TEST(back->flag.count == 3u);
    BOOST_TEST(static_cast<int>(back->flag.reason) == static_cast<int>(FlagReason::ManyAddresses));
    for (const auto kind : {AccountEvent::Kind::Unflag, AccountEvent::Kind::Clear, AccountEvent::Kind::Counts}) {
        AccountEvent e;
        e.kind = kind;
        e.user = "bob";
        e.flag.reason = FlagReason::WeakPassword;
        const auto parsed = parseAccountEvent(formatAccountEvent(e));
        BOOST_TEST_REQUIRE(parsed.has_value());
        BOOST_TEST(static_cast<int>(parsed->kind) == static_cast<int>(kind));
        BOOST_TEST(parsed->user == "bob");
    }
    BOOST_TEST(formatAccountEvent(AccountEvent{AccountEvent::Kind::Clear, "bob", {}}) == "account-clear bob");
    for (const char* bad : {"ban 192.0.2.1 100 5", "account-flag bob many_addresses 1 2 3", "account-flag bob x 1 2 3 e",
                            "account-clear", "account-clear bob extra", "account-unflag bob", "account-counts %zz"}) {
        BOOST_TEST(!parseAccountEvent(bad), bad);
    }
}

BOOST_AUTO_TEST_SUITE_END()
