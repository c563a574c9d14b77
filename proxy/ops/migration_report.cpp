#include "ops/migration_report.h"

#include "ops/config.h"
#include "wire/text_util.h"

#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <sstream>

namespace subproxy {

namespace {

const char kMagic1[] = "subproxy-migration 1";
const char kMagic2[] = "subproxy-migration 2";
constexpr std::int64_t kDay = 86400;
// The ports subproxy exists to intercept: their metric series exist from the start, so that
// alerts and graphs need no absent() special case before the first submission.
constexpr int kInterceptedPorts[] = {25, 465};

int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool validPort(int port) { return port >= 0 && port <= 65535; }

std::string portText(int port) { return port == 0 ? "-" : std::to_string(port); }

// RFC 4180: quoted when it holds a comma, a quote or a line break; quotes doubled.
std::string csvField(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) {
        return s;
    }
    std::string out = "\"";
    for (char c : s) {
        out += c;
        if (c == '"') {
            out += '"';
        }
    }
    return out + "\"";
}

std::string isoTime(std::int64_t t) { return formatUtc(t, "%Y-%m-%dT%H:%M:%SZ"); }

bool isDigits(const std::string& s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::string migrationIdentity(const std::string& user, const std::string& address) {
    return user.empty() ? "@" + address : user;
}

MigrationLimits migrationLimits(const MigrationConfig& config) {
    return {static_cast<std::size_t>(config.maxEntries), config.historyDays};
}

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

MigrationReport::MigrationReport(MigrationLimits limits) {
    setLimits(limits);
    dirty_ = false;
}

void MigrationReport::record(const MigrationSubmission& s, std::int64_t now) {
    MigrationRecord& r = records_[{s.user, s.address, s.port}];
    if (r.count == 0) {
        r.first = now;
    }
    ++r.count;
    r.last = std::max(r.last, now);
    r.mechanism = s.mechanism;
    r.tls = s.tls;
    trimRecords();
    ++totals_[s.port];
    // A clock stepped back a little across midnight keeps counting into the day already begun;
    // one that was days ahead (and is corrected) starts over at the real day.
    std::int64_t day = utcDay(now);
    if (day < today_ && today_ - day <= 1) {
        day = today_;
    }
    if (day != today_) {
        today_ = day;
        todayUsers_.clear();
        trimHistory();
    }
    MigrationDay& d = history_[{day, s.port}];
    ++d.submissions;
    std::set<std::string>& seen = todayUsers_[s.port];
    // Bounded like the records: beyond maxEntries distinct users in one day, more are not counted.
    if (seen.size() < limits_.maxEntries && seen.insert(migrationIdentity(s.user, s.address)).second) {
        ++d.users;
    }
    dirty_ = true;
}

std::uint64_t MigrationReport::total() const {
    std::uint64_t sum = 0;
    for (const auto& [port, n] : totals_) {
        sum += n;
    }
    return sum;
}

std::size_t MigrationReport::distinctUsers() const {
    std::set<std::string> users;
    for (const auto& [key, r] : records_) {
        if (!key.user.empty()) {
            users.insert(key.user);
        }
    }
    return users.size();
}

void MigrationReport::setLimits(MigrationLimits limits) {
    limits_.maxEntries = std::max<std::size_t>(limits.maxEntries, 1);
    limits_.historyDays = std::max(limits.historyDays, 1);
    trimRecords();
    trimHistory();
    for (auto& [port, users] : todayUsers_) {
        while (users.size() > limits_.maxEntries) {
            users.erase(std::prev(users.end()));
        }
    }
}

// Least recently seen first out.  One over the bound (a new record at a full table) is one
// scan; more (a smaller bound, a big file) is one partial sort rather than a scan per record.
void MigrationReport::trimRecords() {
    if (records_.size() <= limits_.maxEntries) {
        return;
    }
    const std::size_t excess = records_.size() - limits_.maxEntries;
    using It = std::map<MigrationKey, MigrationRecord>::iterator;
    auto older = [](It a, It b) { return std::tie(a->second.last, a->first) < std::tie(b->second.last, b->first); };
    if (excess == 1) {
        It oldest = records_.begin();
        for (It it = records_.begin(); it != records_.end(); ++it) {
            if (older(it, oldest)) {
                oldest = it;
            }
        }
        records_.erase(oldest);
    } else {
        std::vector<It> all;
        all.reserve(records_.size());
        for (It it = records_.begin(); it != records_.end(); ++it) {
            all.push_back(it);
        }
        std::nth_element(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(excess), all.end(), older);
        for (std::size_t i = 0; i < excess; ++i) {
            records_.erase(all[i]);
        }
    }
    dirty_ = true;
}

// Days before the kept window, and days after today (counted while the clock was wrong).
void MigrationReport::trimHistory() {
    const std::int64_t oldest = today_ - limits_.historyDays + 1;
    while (!history_.empty() && history_.begin()->first.first < oldest) {
        history_.erase(history_.begin());
        dirty_ = true;
    }
    while (!history_.empty() && std::prev(history_.end())->first.first > today_) {
        history_.erase(std::prev(history_.end()));
        dirty_ = true;
    }
}

// Version 2:
//   subproxy-migration 2
//   today DAY                       the UTC day the T lines belong to
//   total PORT N                    submissions per dialled port (0: unknown, from version 1)
//   R USER ADDRESS PORT COUNT FIRST LAST MECHANISM TLS
//   H DAY PORT USERS SUBMISSIONS    DAY as 2026-11-22
//   T PORT WHO                      already counted in today's USERS (login, or "@" address)
// Fields separated by one space, names %-escaped (escapeField), "-" for empty.
std::string MigrationReport::serialize() const {
    std::ostringstream o;
    o << kMagic2 << "\n" << "today " << formatDay(today_) << "\n";
    for (const auto& [port, n] : totals_) {
        o << "total " << port << ' ' << n << "\n";
    }
    for (const auto& [key, r] : records_) {
        o << "R " << escapeField(key.user) << ' ' << escapeField(key.address) << ' ' << key.port << ' ' << r.count
          << ' ' << r.first << ' ' << r.last << ' ' << escapeField(r.mechanism) << ' ' << escapeField(r.tls) << "\n";
    }
    for (const auto& [dayPort, d] : history_) {
        o << "H " << formatDay(dayPort.first) << ' ' << dayPort.second << ' ' << d.users << ' ' << d.submissions
          << "\n";
    }
    for (const auto& [port, users] : todayUsers_) {
        for (const auto& who : users) {
            o << "T " << port << ' ' << escapeField(who) << "\n";
        }
    }
    return o.str();
}

std::optional<MigrationReport> MigrationReport::parse(const std::string& text, MigrationLimits limits,
                                                      std::string* error) {
    MigrationReport report(limits);
    std::istringstream in(text);
    std::string line;
    int lineNo = 0;
    int version = 0;
    auto fail = [&](const std::string& why) -> std::optional<MigrationReport> {
        if (error) {
            *error = "line " + std::to_string(lineNo) + ": " + why;
        }
        return std::nullopt;
    };
    // Version 1 tables, converted at the end.
    struct V1Entry {
        std::uint64_t count = 0;
        std::int64_t first = 0, last = 0;
        std::string other, tls;
    };
    std::map<std::string, V1Entry> v1Users, v1Addresses;
    std::uint64_t v1Total = 0;
    while (std::getline(in, line)) {
        ++lineNo;
        if (lineNo == 1) {
            version = line == kMagic2 ? 2 : line == kMagic1 ? 1 : 0;
            if (version == 0) {
                return fail("not a subproxy migration state file (expected \"" + std::string(kMagic2) + "\")");
            }
            continue;
        }
        if (line.empty()) {
            continue;
        }
        std::istringstream fields(line);
        std::string tag;
        fields >> tag;
        if (version == 1) {
            if (tag == "total") {
                if (!(fields >> v1Total)) {
                    return fail("bad total");
                }
                continue;
            }
            std::string key, other;
            V1Entry e;
            if ((tag != "U" && tag != "A") || !(fields >> key >> e.count >> e.first >> e.last >> other)) {
                return fail("malformed entry");
            }
            std::string tls;
            if (!(fields >> tls)) {
                tls = "-";  // absent in the first version 1 files
            }
            const auto k = unescapeField(key);
            const auto o = unescapeField(other);
            const auto t = unescapeField(tls);
            if (!k || !o || !t) {
                return fail("bad %-escape");
            }
            e.other = *o;
            e.tls = *t;
            (tag == "U" ? v1Users : v1Addresses)[*k] = e;
            continue;
        }
        if (tag == "today") {
            std::string day;
            std::optional<std::int64_t> d;
            if (!(fields >> day) || !(d = parseDay(day))) {
                return fail("bad day");
            }
            report.today_ = *d;
        } else if (tag == "total") {
            int port = -1;
            std::uint64_t n = 0;
            if (!(fields >> port >> n) || !validPort(port)) {
                return fail("bad total");
            }
            report.totals_[port] = n;
        } else if (tag == "R") {
            std::string user, address, mech, tls;
            int port = -1;
            MigrationRecord r;
            if (!(fields >> user >> address >> port >> r.count >> r.first >> r.last >> mech >> tls) ||
                !validPort(port)) {
                return fail("malformed record");
            }
            const auto u = unescapeField(user);
            const auto a = unescapeField(address);
            const auto m = unescapeField(mech);
            const auto t = unescapeField(tls);
            if (!u || !a || !m || !t) {
                return fail("bad %-escape");
            }
            r.mechanism = *m;
            r.tls = *t;
            report.records_[{*u, *a, port}] = r;
        } else if (tag == "H") {
            std::string day;
            int port = -1;
            MigrationDay d;
            std::optional<std::int64_t> dayNo;
            if (!(fields >> day >> port >> d.users >> d.submissions) || !(dayNo = parseDay(day)) || !validPort(port)) {
                return fail("malformed history line");
            }
            report.history_[{*dayNo, port}] = d;
        } else if (tag == "T") {
            std::string who;
            int port = -1;
            if (!(fields >> port >> who) || !validPort(port)) {
                return fail("malformed today line");
            }
            const auto w = unescapeField(who);
            if (!w) {
                return fail("bad %-escape");
            }
            auto& users = report.todayUsers_[port];
            if (users.size() < report.limits_.maxEntries) {
                users.insert(*w);
            }
        } else {
            return fail("unknown line \"" + tag + "\"");
        }
    }
    if (version == 1) {
        // Users at their last client address; the port was not recorded (0).  An address whose
        // last user was unknown keeps its own record; the others' submissions are in a user's.
        for (const auto& [user, e] : v1Users) {
            report.records_[{user, e.other, 0}] = {e.count, e.first, e.last, "", e.tls};
        }
        for (const auto& [address, e] : v1Addresses) {
            if (e.other.empty()) {
                report.records_[{"", address, 0}] = {e.count, e.first, e.last, "", e.tls};
            }
        }
        if (v1Total > 0) {
            report.totals_[0] = v1Total;
        }
    }
    report.trimRecords();
    report.trimHistory();
    report.dirty_ = version == 1;  // a converted file is written back in the new format
    return report;
}

std::vector<std::pair<MigrationKey, MigrationRecord>> MigrationReport::select(const MigrationFilter& filter) const {
    std::vector<std::pair<MigrationKey, MigrationRecord>> rows;
    // --not-since is about people: a user seen recently from one address is not "gone" because
    // an older record of theirs (another address) is old.  Unknown users group by address.
    std::map<std::string, std::int64_t> latest;
    for (const auto& [key, r] : records_) {
        if (filter.port && key.port != *filter.port) {
            continue;
        }
        rows.emplace_back(key, r);
        std::int64_t& l = latest.try_emplace(migrationIdentity(key.user, key.address), r.last).first->second;
        l = std::max(l, r.last);
    }
    rows.erase(std::remove_if(rows.begin(), rows.end(),
                              [&](const auto& row) {
                                  if (filter.since && row.second.last < *filter.since) {
                                      return true;
                                  }
                                  return filter.notSince &&
                                         latest[migrationIdentity(row.first.user, row.first.address)] >= *filter.notSince;
                              }),
               rows.end());
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
        return a.second.last != b.second.last ? a.second.last > b.second.last : a.first < b.first;
    });
    return rows;
}

std::vector<MigrationHistoryRow> MigrationReport::historyRows(const MigrationFilter& filter, std::int64_t now) const {
    std::set<int> ports;
    const std::int64_t end = std::max(utcDay(now), today_);
    std::int64_t start = end - limits_.historyDays + 1;
    std::int64_t oldestData = end;
    for (const auto& [dayPort, d] : history_) {
        if (dayPort.first >= start && dayPort.first <= end && (!filter.port || dayPort.second == *filter.port)) {
            ports.insert(dayPort.second);
            oldestData = std::min(oldestData, dayPort.first);
        }
    }
    if (filter.port) {
        ports.insert(*filter.port);
    }
    start = std::max(start, oldestData);
    if (filter.since) {
        start = std::max(start, utcDay(*filter.since));
    }
    std::vector<MigrationHistoryRow> rows;
    for (std::int64_t day = end; day >= start; --day) {
        for (int port : ports) {
            const auto it = history_.find({day, port});
            rows.push_back({day, port, it == history_.end() ? MigrationDay{} : it->second});
        }
    }
    return rows;
}

std::string MigrationReport::recordsText(const MigrationFilter& filter) const {
    const auto rows = select(filter);
    std::ostringstream o;
    o << "Submissions through the intercepted ports: " << total();
    if (!totals_.empty()) {
        o << " (";
        bool first = true;
        for (const auto& [port, n] : totals_) {
            o << (first ? "" : ", ") << (port == 0 ? std::string("port unknown") : "port " + std::to_string(port))
              << ": " << n;
            first = false;
        }
        o << ")";
    }
    o << "\nRecords (user, client address, dialled port): " << records_.size();
    if (filter.port || filter.since || filter.notSince) {
        o << ", shown: " << rows.size();
    }
    o << "\n\n";
    std::size_t userWidth = 4, addressWidth = 7;
    for (const auto& [key, r] : rows) {
        userWidth = std::max(userWidth, escapeField(key.user).size());
        addressWidth = std::max(addressWidth, escapeField(key.address).size());
    }
    // Aligned with setw (no fixed buffer: logins, addresses and odd state files can be long).
    auto line = [&](const std::string& user, const std::string& address, const std::string& port,
                    const std::string& count, const std::string& first, const std::string& last,
                    const std::string& mech, const std::string& tls) {
        o << std::left << std::setw(static_cast<int>(userWidth)) << user << "  "
          << std::setw(static_cast<int>(addressWidth)) << address << "  " << std::right << std::setw(5) << port
          << "  " << std::setw(8) << count << "  " << std::left << std::setw(19) << first << "  " << std::setw(19)
          << last << "  " << std::setw(8) << mech << "  " << tls << "\n";
    };
    line("USER", "ADDRESS", "PORT", "COUNT", "FIRST SEEN (UTC)", "LAST SEEN (UTC)", "MECH", "TLS");
    for (const auto& [key, r] : rows) {
        // escapeField: one word per column whatever a login contains.  The TLS column is the
        // help desk's hint: "TLSv1.0" is a mail program to replace.
        line(escapeField(key.user), escapeField(key.address), portText(key.port), std::to_string(r.count),
             formatTime(r.first), formatTime(r.last), escapeField(r.mechanism), escapeField(r.tls));
    }
    return o.str();
}

std::string MigrationReport::recordsCsv(const MigrationFilter& filter) const {
    std::string out = "user,address,port,count,first_seen_utc,last_seen_utc,mechanism,tls\r\n";
    for (const auto& [key, r] : select(filter)) {
        out += csvField(key.user) + "," + csvField(key.address) + "," + (key.port ? std::to_string(key.port) : "") +
               "," + std::to_string(r.count) + "," + formatTime(r.first) + "," + formatTime(r.last) + "," +
               csvField(r.mechanism) + "," + csvField(r.tls) + "\r\n";
    }
    return out;
}

std::string MigrationReport::historyText(const MigrationFilter& filter, std::int64_t now) const {
    const auto rows = historyRows(filter, now);
    std::ostringstream o;
    o << "Submissions per UTC day through each dialled port (USERS: distinct users that day), last "
      << limits_.historyDays << " days\n";
    std::vector<int> ports;
    for (const auto& row : rows) {
        if (std::find(ports.begin(), ports.end(), row.port) != ports.end()) {
            break;  // the first day lists every port once
        }
        ports.push_back(row.port);
    }
    if (ports.empty()) {
        o << "(nothing submitted in that time)\n";
        return o.str();
    }
    // Two columns per port, right-aligned under headings as wide as their widest number.
    std::vector<std::string> heads;
    for (int port : ports) {
        heads.push_back("USERS:" + portText(port));
        heads.push_back("SUBMISSIONS:" + portText(port));
    }
    std::vector<std::vector<std::string>> cells;
    std::vector<std::size_t> widths;
    for (const auto& h : heads) {
        widths.push_back(h.size());
    }
    for (std::size_t i = 0; i < rows.size(); i += ports.size()) {
        cells.push_back({formatDay(rows[i].day)});
        for (std::size_t p = 0; p < ports.size(); ++p) {
            const MigrationDay& d = rows[i + p].counts;
            for (const std::uint64_t n : {d.users, d.submissions}) {
                cells.back().push_back(std::to_string(n));
                widths[cells.back().size() - 2] = std::max(widths[cells.back().size() - 2], cells.back().back().size());
            }
        }
    }
    o << "DAY (UTC) ";
    for (std::size_t c = 0; c < heads.size(); ++c) {
        o << std::string(2 + widths[c] - heads[c].size(), ' ') << heads[c];
    }
    o << "\n";
    for (const auto& row : cells) {
        o << row[0];
        for (std::size_t c = 1; c < row.size(); ++c) {
            o << std::string(2 + widths[c - 1] - row[c].size(), ' ') << row[c];
        }
        o << "\n";
    }
    return o.str();
}

std::string MigrationReport::historyCsv(const MigrationFilter& filter, std::int64_t now) const {
    std::string out = "day,port,users,submissions\r\n";
    for (const auto& row : historyRows(filter, now)) {
        out += formatDay(row.day) + "," + (row.port ? std::to_string(row.port) : "") + "," +
               std::to_string(row.counts.users) + "," + std::to_string(row.counts.submissions) + "\r\n";
    }
    return out;
}

std::string MigrationReport::json(const MigrationFilter& filter, std::int64_t now) const {
    std::ostringstream o;
    auto port = [](int p) { return p == 0 ? std::string("null") : std::to_string(p); };
    o << "{\"version\": 2, \"generated\": " << now << ", \"total\": " << total() << ", \"total_by_port\": {";
    bool first = true;
    for (const auto& [p, n] : totals_) {
        o << (first ? "" : ", ") << "\"" << (p == 0 ? std::string("unknown") : std::to_string(p)) << "\": " << n;
        first = false;
    }
    o << "}, \"records\": [";
    first = true;
    for (const auto& [key, r] : select(filter)) {
        o << (first ? "" : ", ") << "{\"user\": " << jsonString(key.user) << ", \"address\": "
          << jsonString(key.address) << ", \"port\": " << port(key.port) << ", \"count\": " << r.count
          << ", \"first\": " << r.first << ", \"last\": " << r.last << ", \"first_utc\": \"" << isoTime(r.first)
          << "\", \"last_utc\": \"" << isoTime(r.last) << "\", \"mechanism\": " << jsonString(r.mechanism)
          << ", \"tls\": " << jsonString(r.tls) << "}";
        first = false;
    }
    o << "], \"history_days\": " << limits_.historyDays << ", \"history\": [";
    first = true;
    for (const auto& row : historyRows(filter, now)) {
        o << (first ? "" : ", ") << "{\"day\": \"" << formatDay(row.day) << "\", \"port\": " << port(row.port)
          << ", \"users\": " << row.counts.users << ", \"submissions\": " << row.counts.submissions << "}";
        first = false;
    }
    o << "]}";
    return o.str();
}

std::string MigrationReport::render(const MigrationQuery& q, std::int64_t now) const {
    switch (q.format) {
    case MigrationFormat::Json:
        return json(q.filter, now) + "\n";
    case MigrationFormat::Csv:
        return q.history ? historyCsv(q.filter, now) : recordsCsv(q.filter);
    case MigrationFormat::Text:
        break;
    }
    return q.history ? historyText(q.filter, now) : recordsText(q.filter);
}

std::vector<MigrationPortFigures> MigrationReport::portFigures(std::int64_t now) const {
    std::map<int, MigrationPortFigures> byPort;
    for (int port : kInterceptedPorts) {
        byPort[port].port = port;
    }
    for (const auto& [port, n] : totals_) {
        if (port != 0) {  // version 1 totals had no port: not a series of any port
            byPort[port].port = port;
            byPort[port].submissions = n;
        }
    }
    const std::int64_t today = utcDay(now);
    for (auto it = history_.lower_bound({today, 1}); it != history_.end() && it->first.first == today; ++it) {
        byPort[it->first.second].port = it->first.second;
        byPort[it->first.second].usersToday = it->second.users;
    }
    std::vector<MigrationPortFigures> out;
    for (const auto& [port, f] : byPort) {
        out.push_back(f);
    }
    return out;
}

}  // namespace subproxy
