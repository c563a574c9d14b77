// The text forms the migration report shares between its state file, its renderings and the
// arguments of `subproxy -r`: %-escaped fields, and UTC days and times.
#include "ops/migration_report.h"

#include "wire/percent_encoding.h"
#include "wire/text_util.h"

#include <algorithm>

namespace subproxy {

namespace {

constexpr std::int64_t kDay = 86400;

bool isDigits(const std::string& s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

// The state file's percent-encoding, plus "-" for the empty field (and so "%2D" for a lone "-").
std::string escapeField(const std::string& s) {
    if (s.empty()) {
        return "-";
    }
    return s == "-" ? "%2D" : percentEncode(s);
}

std::optional<std::string> unescapeField(const std::string& s) {
    std::string out;
    if (s != "-" && !percentDecode(s, out)) {
        return std::nullopt;
    }
    return out;
}

std::string formatTime(std::int64_t t) { return formatUtc(t, "%Y-%m-%d %H:%M:%S"); }

std::int64_t utcDay(std::int64_t t) {
    std::int64_t day = t / kDay;
    if (t % kDay < 0) {
        --day;  // floor, not truncation, before 1970
    }
    return day;
}

std::string formatDay(std::int64_t day) { return formatUtc(day * kDay, "%Y-%m-%d"); }

// Howard Hinnant's days_from_civil: no timegm(), no TZ, no locale.
std::optional<std::int64_t> parseDay(const std::string& text) {
    if (text.size() != 10 || text[4] != '-' || text[7] != '-' || !isDigits(text.substr(0, 4)) ||
        !isDigits(text.substr(5, 2)) || !isDigits(text.substr(8, 2))) {
        return std::nullopt;
    }
    std::int64_t y = std::stoi(text.substr(0, 4));
    const int m = std::stoi(text.substr(5, 2));
    const int d = std::stoi(text.substr(8, 2));
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    static const int kMonthDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > kMonthDays[m - 1] + (m == 2 && leap ? 1 : 0)) {
        return std::nullopt;
    }
    y -= m <= 2 ? 1 : 0;
    const std::int64_t era = y / 400;  // y >= 1969: never negative
    const std::int64_t yoe = y - era * 400;
    const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

std::optional<std::int64_t> parseReportTime(const std::string& text, std::int64_t now) {
    if (isDigits(text) && text.size() <= 5) {
        const std::int64_t days = std::stoll(text);
        if (days > 36500) {
            return std::nullopt;
        }
        return now - days * kDay;
    }
    if (const auto day = parseDay(text)) {
        return *day * kDay;
    }
    return std::nullopt;
}

}  // namespace subproxy
