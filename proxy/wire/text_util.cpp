// Small text helpers: peer strings for logs and case-insensitive SMTP keywords.
#include "wire/text_util.h"

#include <cctype>
#include <cstdio>
#include <ctime>

namespace subproxy {

namespace {

// ASCII-only on purpose: SMTP keywords are ASCII and the locale must not change the result.
char upperAscii(char c) {
    return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

char lowerAscii(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool isSpaceOrTab(char c) { return c == ' ' || c == '\t'; }

}  // namespace

std::string printable(std::string_view text, std::size_t max) {
    std::string out;
    const std::size_t n = text.size() < max ? text.size() : max;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        const auto byte = static_cast<unsigned char>(text[i]);
        // Control bytes could forge log lines (CR/LF) or terminal escapes; 8-bit bytes may be
        // broken UTF-8.  Either way the log gets a '?' instead.
        out.push_back(byte < 0x20 || byte >= 0x7f ? '?' : static_cast<char>(byte));
    }
    return out;
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
    std::string out;
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i > 0) {
            out += separator;
        }
        out += items[i];
    }
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (upperAscii(a[i]) != upperAscii(b[i])) {
            return false;
        }
    }
    return true;
}

std::string toUpper(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        c = upperAscii(c);
    }
    return out;
}

std::string toLower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        c = lowerAscii(c);
    }
    return out;
}

std::string_view trimSpaces(std::string_view s) {
    while (!s.empty() && isSpaceOrTab(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && isSpaceOrTab(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

std::string directoryOf(const std::string& path) {
    const std::size_t slash = path.rfind('/');
    if (slash == std::string::npos) {
        return ".";
    }
    return slash == 0 ? "/" : path.substr(0, slash);
}

std::string formatUtc(std::int64_t unixSeconds, const char* format) {
    const std::time_t t = static_cast<std::time_t>(unixSeconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    return std::string(buf, std::strftime(buf, sizeof buf, format, &tm));
}

std::string formatRfc3339(std::int64_t unixSeconds, long microseconds, long utcOffset) {
    const std::string local = formatUtc(unixSeconds + utcOffset, "%Y-%m-%dT%H:%M:%S");
    const long minutes = (utcOffset < 0 ? -utcOffset : utcOffset) / 60;
    char tail[32];
    std::snprintf(tail, sizeof tail, ".%06ld%c%02ld:%02ld", microseconds, utcOffset < 0 ? '-' : '+', minutes / 60,
                  minutes % 60);
    return local + tail;
}

}  // namespace subproxy
