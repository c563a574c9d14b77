#include <boost/test/unit_test.hpp>

#include <malloc.h>

#include "ban_list.h"

using namespace subproxy;

namespace {

IpAddress ip(const char* text) { return *parseIpAddress(text); }

GuardPolicy testPolicy() {
    GuardPolicy p;
    p.delayBase = 2;
    p.delayMax = 15;
    p.window = 600;
    p.banThreshold = 5;
    p.banTime = 3600;
    p.maxTracked = 1000;
    return p;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ban_list)

BOOST_AUTO_TEST_CASE(window_counter_counts_and_expires) {
    WindowCounter w(10);
    BOOST_TEST(w.add("a", 100, 60) == 1u);
    BOOST_TEST(w.add("a", 130, 60) == 2u);
    BOOST_TEST(w.count("a", 159, 60) == 2u);
    BOOST_TEST(w.count("a", 160, 60) == 0u);
    BOOST_TEST(w.add("a", 160, 60) == 1u);  // a new window opens
    BOOST_TEST(w.count("b", 100, 60) == 0u);
}

BOOST_AUTO_TEST_CASE(window_counter_evicts_least_recent) {
    WindowCounter w(3);
    w.add("a", 1, 60);
    w.add("b", 1, 60);
    w.add("c", 1, 60);
    w.add("a", 2, 60);  // a is now the most recent
    w.add("d", 2, 60);  // evicts b
    BOOST_TEST(w.size() == 3u);
    BOOST_TEST(w.contains("a"));
    BOOST_TEST(!w.contains("b"));
    BOOST_TEST(w.contains("d"));
    BOOST_TEST(w.evictions() == 1u);
    w.erase("a");
    BOOST_TEST(w.size() == 2u);
}

BOOST_AUTO_TEST_CASE(delays_double_and_cap) {
    BanList b(testPolicy());
    BOOST_TEST(b.delayFor(0) == 0.0);
    BOOST_TEST(b.delayFor(1) == 2.0);
    BOOST_TEST(b.delayFor(2) == 4.0);
    BOOST_TEST(b.delayFor(3) == 8.0);
    BOOST_TEST(b.delayFor(4) == 15.0);
    BOOST_TEST(b.delayFor(4000000000u) == 15.0);
    GuardPolicy off = testPolicy();
    off.delayBase = 0;
    BOOST_TEST(BanList(off).delayFor(3) == 0.0);
}

BOOST_AUTO_TEST_CASE(failures_delay_then_ban) {
    BanList b(testPolicy());
    const auto a = ip("192.0.2.7");
    for (unsigned i = 1; i < 5; ++i) {
        auto f = b.recordFailure(a, "user" + std::to_string(i), 1000 + i);
        BOOST_TEST(f.key == "192.0.2.7");
        BOOST_TEST(f.addressFailures == i);
        BOOST_TEST(f.userFailures == 1u);
        BOOST_TEST(f.delay == b.delayFor(i));  // the address count drives it
        BOOST_TEST(!f.banned);
        BOOST_TEST(b.banRemaining(a, 1000 + i) == 0);
    }
    auto f = b.recordFailure(a, "root", 1010);
    BOOST_TEST(f.banned);
    BOOST_TEST(b.banRemaining(a, 1010) == 3600);
    BOOST_TEST(b.banRemaining(a, 4609) == 1);
    BOOST_TEST(b.banRemaining(a, 4610) == 0);
    BOOST_TEST(b.banRemaining(ip("192.0.2.8"), 1010) == 0);
    // Further failures while banned do not re-ban (the end time stays).
    BOOST_TEST(!b.recordFailure(a, "root", 1011).banned);
    BOOST_TEST(b.bans(1011).size() == 1u);
}

BOOST_AUTO_TEST_CASE(user_count_slows_distributed_guessing) {
    BanList b(testPolicy());
    // Three addresses each guess "alice" once: the third reply waits like a third failure.
    b.recordFailure(ip("192.0.2.1"), "alice", 10);
    b.recordFailure(ip("192.0.2.2"), "alice", 11);
    auto f = b.recordFailure(ip("192.0.2.3"), "alice", 12);
    BOOST_TEST(f.addressFailures == 1u);
    BOOST_TEST(f.userFailures == 3u);
    BOOST_TEST(f.delay == 8.0);
    BOOST_TEST(!f.banned);
    // Existing or not, a name is counted the same way.
    auto g = b.recordFailure(ip("192.0.2.4"), "no-such-user", 12);
    BOOST_TEST(g.delay == 2.0);
    b.recordSuccess("alice");
    BOOST_TEST(b.recordFailure(ip("192.0.2.5"), "alice", 13).userFailures == 1u);
}

BOOST_AUTO_TEST_CASE(ipv6_grouped_by_prefix) {
    BanList b(testPolicy());
    auto f = b.recordFailure(ip("2001:db8:1:2::1"), "x", 1);
    BOOST_TEST(f.key == "2001:db8:1:2::/64");
    f = b.recordFailure(ip("2001:db8:1:2:ffff::9"), "y", 2);
    BOOST_TEST(f.addressFailures == 2u);
    f = b.recordFailure(ip("2001:db8:1:3::1"), "z", 3);
    BOOST_TEST(f.addressFailures == 1u);
    GuardPolicy p = testPolicy();
    p.ipv6Prefix = 48;
    BanList c(p);
    BOOST_TEST(c.addressKey(ip("2001:db8:1:2::1")) == "2001:db8:1::/48");
    p.ipv6Prefix = 128;
    BOOST_TEST(BanList(p).addressKey(ip("2001:db8:1:2::1")) == "2001:db8:1:2::1");
    BOOST_TEST(c.addressKey(ip("::ffff:192.0.2.1")) == "192.0.2.1");
}

BOOST_AUTO_TEST_CASE(failures_outside_the_window_do_not_ban) {
    BanList b(testPolicy());
    const auto a = ip("198.51.100.1");
    for (int i = 0; i < 20; ++i) {
        // One failure every 200 s: at most 3 fall in any 600 s window.
        BOOST_TEST(!b.recordFailure(a, "u", 200 * i).banned);
    }
}

BOOST_AUTO_TEST_CASE(lift_by_address_or_key) {
    BanList b(testPolicy());
    b.ban(ip("2001:db8::5"), 100, 60, 7);
    b.ban(ip("192.0.2.9"), 100, 60, 7);
    BOOST_TEST(b.lift("2001:db8::abcd", 110) == "2001:db8::/64");
    BOOST_TEST(b.banRemaining(ip("2001:db8::5"), 110) == 0);
    BOOST_TEST(b.lift("192.0.2.9", 110) == "192.0.2.9");
    BOOST_TEST(b.lift("192.0.2.9", 110).empty());
    BOOST_TEST(b.lift("garbage", 110).empty());
    // Lifting also forgets the count: the next failure starts at the first delay.
    for (int i = 0; i < 3; ++i) b.recordFailure(ip("192.0.2.10"), "u", 200);
    b.lift("192.0.2.10", 201);
    BOOST_TEST(b.recordFailure(ip("192.0.2.10"), "v", 202).addressFailures == 1u);
}

BOOST_AUTO_TEST_CASE(state_round_trip) {
    BanList b(testPolicy());
    for (int i = 0; i < 5; ++i) b.recordFailure(ip("192.0.2.7"), "root", 1000);
    b.recordFailure(ip("2001:db8::1"), "we ird%\n", 1001);
    BOOST_TEST(b.dirty());
    const std::string text = b.serialise(1002);
    BOOST_TEST(text.find("ban 192.0.2.7 4600 5\n") != std::string::npos);
    BOOST_TEST(text.find("addr 2001:db8::/64 1 1001\n") != std::string::npos);
    BOOST_TEST(text.find("user we%20ird%25%0A 1 1001\n") != std::string::npos);

    BanList c(testPolicy());
    BOOST_TEST(c.load(text + "bogus line\nban nonsense 1 2\naddr 192.0.2.1 x 1\n", 1003) == 3u);
    BOOST_TEST(!c.dirty());
    BOOST_TEST(c.banRemaining(ip("192.0.2.7"), 1003) == 3597);
    BOOST_TEST(c.serialise(1002) == text);
    // Counters keep counting where they were.
    BOOST_TEST(c.recordFailure(ip("2001:db8::2"), "we ird%\n", 1004).addressFailures == 2u);
    // Expired records are not loaded.
    BanList d(testPolicy());
    d.load(text, 5000);
    BOOST_TEST(d.bans(5000).empty());
    BOOST_TEST(d.trackedAddresses() == 0u);
    BOOST_TEST(d.trackedUsers() == 0u);
}

BOOST_AUTO_TEST_CASE(percent_coding) {
    std::string out;
    BOOST_TEST(percentEncode("a b%c") == "a%20b%25c");
    BOOST_TEST(percentDecode("a%20b%25c", out));
    BOOST_TEST(out == "a b%c");
    BOOST_TEST(!percentDecode("a%2", out));
    BOOST_TEST(!percentDecode("a%zz", out));
}

BOOST_AUTO_TEST_CASE(memory_is_bounded) {
    GuardPolicy p = testPolicy();
    p.maxTracked = 100;
    p.banThreshold = 1;
    BanList b(p);
    for (int i = 0; i < 1000; ++i) {
        b.recordFailure(ip(("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256)).c_str()),
                        "user" + std::to_string(i), 100 + i);
    }
    BOOST_TEST(b.trackedAddresses() == 100u);
    BOOST_TEST(b.trackedUsers() == 100u);
    BOOST_TEST(b.banCount() == 100u);
    // The latest ban survives eviction (the soonest-ending go first).
    BOOST_TEST(b.banRemaining(ip("10.0.3.231"), 1100) > 0);
}

// Not a pass/fail check on the allocator, a number for the docs: heap bytes per tracked
// IPv6 /64 (the worst case: the key does not fit the small-string buffer) and per user.
BOOST_AUTO_TEST_CASE(memory_per_tracked_address) {
    const std::size_t n = 20000;
    GuardPolicy p = testPolicy();
    p.maxTracked = n;
    p.banThreshold = 0;
    BanList b(p);
    const auto before = mallinfo2().uordblks;
    for (std::size_t i = 0; i < n; ++i) {
        char text[64];
        std::snprintf(text, sizeof text, "2001:db8:%zx:%zx::1", i / 65536, i % 65536);
        b.recordFailure(ip(text), "", 1);
    }
    const auto after = mallinfo2().uordblks;
    const double perAddress = static_cast<double>(after - before) / n;
    BOOST_TEST_MESSAGE("guard: " << perAddress << " heap bytes per tracked IPv6 /64");
    BOOST_TEST(perAddress < 400.0);
}

BOOST_AUTO_TEST_SUITE_END()
