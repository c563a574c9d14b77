// Small text helpers shared by the protocol code and the logs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace subproxy {

// Peer text made safe for a log line: non-printable bytes become '?', cut to `max` bytes
// (Postfix printable() plus %.100s).
std::string printable(std::string_view text, std::size_t max = 100);

bool iequals(std::string_view a, std::string_view b);
std::string toUpper(std::string_view s);
std::string toLower(std::string_view s);  // ASCII letters only, whatever the locale
std::string_view trimSpaces(std::string_view s);
// "a b c" from {"a", "b", "c"} and " ".
std::string join(const std::vector<std::string>& items, std::string_view separator);

// The directory part of a file name: "." for "name", "/" for "/name", "a/b" for "a/b/name".
std::string directoryOf(const std::string& path);

// A Unix time as UTC text in strftime `format` ("%Y-%m-%dT%H:%M:%SZ").
std::string formatUtc(std::int64_t unixSeconds, const char* format);

// RFC 3339 with microseconds, as local time `utcOffset` seconds east of UTC (tm_gmtoff):
// "2024-05-01T14:34:56.123456+02:00" (rsyslog's high-precision file format).
std::string formatRfc3339(std::int64_t unixSeconds, long microseconds, long utcOffset);

}  // namespace subproxy
