#include "migration_report.h"

#include "text_util.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <sstream>
#include <vector>

#include "metrics.h"  // jsonString

namespace subproxy {

namespace {

const char kMagic[] = "subproxy-migration 1";

void bump(std::map<std::string, MigrationEntry>& table, const std::string& key, const std::string& other,
          std::int64_t now, const std::string& tls) {
    MigrationEntry& e = table[key];
    if (e.count == 0) {
        e.first = now;
    }
    ++e.count;
    e.last = std::max(e.last, now);
    e.other = other;
    e.tls = tls;
}

int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::vector<std::pair<std::string, MigrationEntry>> byRecency(const std::map<std::string, MigrationEntry>& t) {
    std::vector<std::pair<std::string, MigrationEntry>> rows(t.begin(), t.end());
    std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.last > b.second.last; });
    return rows;
}

}  // namespace

std::string escapeField(const std::string& s) {
    if (s.empty()) {
        return "-";
    }
    std::string out;
    for (char c : s) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte <= 0x20 || byte >= 0x7f || c == '%' || (c == '-' && s.size() == 1)) {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", byte);
            out += buf;
        } else {
            out += c;
        }
    }
    return out;
}

std::optional<std::string> unescapeField(const std::string& s) {
    if (s == "-") {
        return std::string();
    }
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size()) {
            return std::nullopt;
        }
        const int hi = hexValue(s[i + 1]);
        const int lo = hexValue(s[i + 2]);
        if (hi < 0 || lo < 0) {
            return std::nullopt;
        }
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return out;
}

std::string formatTime(std::int64_t t) { return formatUtc(t, "%Y-%m-%d %H:%M:%S"); }

void MigrationReport::record(const std::string& user, const std::string& address, std::int64_t now,
                             const std::string& tls) {
    if (!user.empty()) {
        bump(users_, user, address, now, tls);
        trim(users_);
    }
    bump(addresses_, address, user, now, tls);
    trim(addresses_);
    ++total_;
    dirty_ = true;
}

void MigrationReport::setMaxEntries(std::size_t n) {
    max_ = std::max<std::size_t>(n, 1);
    trim(users_);
    trim(addresses_);
}

// Least recently seen first out.  A linear scan per eviction is fine at the sizes a state
// file can hold (and only runs when a new name arrives at a full table).
void MigrationReport::trim(std::map<std::string, MigrationEntry>& table) {
    while (table.size() > max_) {
        auto oldest = table.begin();
        for (auto it = table.begin(); it != table.end(); ++it) {
            if (it->second.last < oldest->second.last) {
                oldest = it;
            }
        }
        table.erase(oldest);
        dirty_ = true;
    }
}

std::string MigrationReport::serialize() const {
    std::ostringstream o;
    o << kMagic << "\n" << "total " << total_ << "\n";
    for (const auto& [tag, table] : {std::make_pair('U', &users_), std::make_pair('A', &addresses_)}) {
        for (const auto& [key, e] : *table) {
            o << tag << ' ' << escapeField(key) << ' ' << e.count << ' ' << e.first << ' ' << e.last << ' '
              << escapeField(e.other) << ' ' << escapeField(e.tls) << "\n";
        }
    }
    return o.str();
}

std::optional<MigrationReport> MigrationReport::parse(const std::string& text, std::size_t maxEntries,
                                                      std::string* error) {
    MigrationReport report(maxEntries);
    std::istringstream in(text);
    std::string line;
    int lineNo = 0;
    auto fail = [&](const std::string& why) -> std::optional<MigrationReport> {
        if (error) {
            *error = "line " + std::to_string(lineNo) + ": " + why;
        }
        return std::nullopt;
    };
    while (std::getline(in, line)) {
        ++lineNo;
        if (lineNo == 1) {
            if (line != kMagic) {
                return fail("not a subproxy migration state file (expected \"" + std::string(kMagic) + "\")");
            }
            continue;
        }
        if (line.empty()) {
            continue;
        }
        std::istringstream fields(line);
        std::string tag;
        fields >> tag;
        if (tag == "total") {
            if (!(fields >> report.total_)) {
                return fail("bad total");
            }
            continue;
        }
        std::string key, other;
        MigrationEntry e;
        if ((tag != "U" && tag != "A") || !(fields >> key >> e.count >> e.first >> e.last >> other)) {
            return fail("malformed entry");
        }
        std::string tls;
        if (!(fields >> tls)) {
            tls = "-";  // absent in files written before the field existed
        }
        const auto k = unescapeField(key);
        const auto o = unescapeField(other);
        const auto t = unescapeField(tls);
        if (!k || !o || !t) {
            return fail("bad %-escape");
        }
        e.other = *o;
        e.tls = *t;
        (tag == "U" ? report.users_ : report.addresses_)[*k] = e;
    }
    if (lineNo == 0) {
        return report;  // an empty file: nothing recorded yet
    }
    report.trim(report.users_);
    report.trim(report.addresses_);
    report.dirty_ = false;
    return report;
}

std::string MigrationReport::table() const {
    std::ostringstream o;
    auto section = [&](const char* title, const char* keyName, const char* otherName,
                       const std::map<std::string, MigrationEntry>& t) {
        std::size_t width = std::string(keyName).size();
        for (const auto& [key, e] : t) {
            width = std::max(width, escapeField(key).size());
        }
        o << title << " (" << t.size() << ")\n";
        char buf[128];
        std::snprintf(buf, sizeof buf, "%-*s %8s  %-19s  %-19s  %-7s  ", static_cast<int>(width), keyName,
                      "COUNT", "FIRST (UTC)", "LAST (UTC)", "TLS");
        o << buf << otherName << "\n";
        for (const auto& [key, e] : byRecency(t)) {
            const std::string k = escapeField(key);
            o << k << std::string(width - k.size(), ' ');
            // The TLS column is the help desk's hint: "TLSv1.0" is a mail program to replace.
            std::snprintf(buf, sizeof buf, " %8llu  %-19s  %-19s  %-7s  ", static_cast<unsigned long long>(e.count),
                          formatTime(e.first).c_str(), formatTime(e.last).c_str(),
                          escapeField(e.tls).c_str());
            o << buf << escapeField(e.other) << "\n";
        }
    };
    o << "Submissions through the intercepted ports: " << total_ << "\n\n";
    section("Users", "USER", "LAST CLIENT", users_);
    o << "\n";
    section("Client addresses", "ADDRESS", "LAST USER", addresses_);
    return o.str();
}

std::string MigrationReport::json() const {
    std::ostringstream o;
    auto rows = [&](const char* keyName, const char* otherName, const std::map<std::string, MigrationEntry>& t) {
        o << "[";
        bool first = true;
        for (const auto& [key, e] : byRecency(t)) {
            o << (first ? "" : ", ") << "{\"" << keyName << "\": " << jsonString(key) << ", \"count\": " << e.count
              << ", \"first\": " << e.first << ", \"last\": " << e.last << ", \"tls\": " << jsonString(e.tls)
              << ", \"" << otherName << "\": " << jsonString(e.other) << "}";
            first = false;
        }
        o << "]";
    };
    o << "{\"total\": " << total_ << ", \"users\": ";
    rows("user", "last_client", users_);
    o << ", \"addresses\": ";
    rows("address", "last_user", addresses_);
    o << "}";
    return o.str();
}

}  // namespace subproxy
