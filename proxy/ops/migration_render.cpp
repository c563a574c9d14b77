// The migration report as `subproxy -r` and the status pages show it: text tables for the help
// desk, CSV for a spreadsheet, one JSON document for scripts.
#include "ops/migration_report.h"

#include "wire/text_util.h"

#include <algorithm>
#include <iomanip>
#include <sstream>

namespace subproxy {

namespace {

std::string portText(int port) { return port == 0 ? "-" : std::to_string(port); }

std::string isoTime(std::int64_t t) { return formatUtc(t, "%Y-%m-%dT%H:%M:%SZ"); }

}  // namespace

// RFC 4180 (also the accounts report): quoted when it holds a comma, a quote or a line break;
// quotes doubled.
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

}  // namespace subproxy
