// formatRfc3339: the time stamp of every log_file line (log.cpp).
#include <boost/test/unit_test.hpp>

#include <cstdint>

#include "wire/text_util.h"

using namespace subproxy;

BOOST_AUTO_TEST_SUITE(text_util)

BOOST_AUTO_TEST_CASE(rfc3339_utc_and_offsets) {
    // 2024-05-01T12:34:56Z
    constexpr std::int64_t t = 1714566896;
    BOOST_TEST(formatRfc3339(t, 123456, 0) == "2024-05-01T12:34:56.123456+00:00");
    BOOST_TEST(formatRfc3339(t, 7, 2 * 3600) == "2024-05-01T14:34:56.000007+02:00");
    // Half-hour zones and the west: the local date may be the day before.
    BOOST_TEST(formatRfc3339(t, 0, -(9 * 3600 + 30 * 60)) == "2024-05-01T03:04:56.000000-09:30");
    BOOST_TEST(formatRfc3339(t - 12 * 3600 - 1, 999999, -3 * 3600) == "2024-04-30T21:34:55.999999-03:00");
    BOOST_TEST(formatRfc3339(t, 0, 5 * 3600 + 45 * 60) == "2024-05-01T18:19:56.000000+05:45");
}

BOOST_AUTO_TEST_SUITE_END()
