// The migration report's state file: written by serialize(), read back by parse() (versions 2
// and 1).  migration_store.cpp does the file I/O.
#include "ops/migration_report.h"

#include <sstream>

namespace subproxy {

namespace {

const char kMagic1[] = "subproxy-migration 1";
const char kMagic2[] = "subproxy-migration 2";

bool validPort(int port) { return port >= 0 && port <= 65535; }

}  // namespace

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

// Reads a state file one line at a time into a report.  It is a nested class of MigrationReport
// so that it may fill the report's tables.  Every read returns why the line is wrong, or
// nullopt when it is fine.
class MigrationReport::StateFileReader {
public:
    using Problem = std::optional<std::string>;

    explicit StateFileReader(MigrationLimits limits) : report_(limits) {}

    Problem readMagic(const std::string& line);  // the first line: which version
    Problem readLine(const std::string& line);   // every line after it
    MigrationReport finish();

private:
    // Version 1 tables, converted at the end.
    struct V1Entry {
        std::uint64_t count = 0;
        std::int64_t first = 0, last = 0;
        std::string other, tls;
    };

    Problem readV1Line(const std::string& tag, std::istream& fields);
    Problem readToday(std::istream& fields);
    Problem readTotal(std::istream& fields);
    Problem readRecord(std::istream& fields);
    Problem readHistory(std::istream& fields);
    Problem readTodayUser(std::istream& fields);
    void convertV1();

    MigrationReport report_;
    int version_ = 0;
    std::map<std::string, V1Entry> v1Users_, v1Addresses_;
    std::uint64_t v1Total_ = 0;
};

std::optional<MigrationReport> MigrationReport::parse(const std::string& text, MigrationLimits limits,
                                                      std::string* error) {
    StateFileReader reader(limits);
    std::istringstream in(text);
    std::string line;
    int lineNo = 0;
    while (std::getline(in, line)) {
        ++lineNo;
        const auto problem = lineNo == 1 ? reader.readMagic(line) : reader.readLine(line);
        if (problem) {
            if (error) {
                *error = "line " + std::to_string(lineNo) + ": " + *problem;
            }
            return std::nullopt;
        }
    }
    return reader.finish();
}

MigrationReport::StateFileReader::Problem MigrationReport::StateFileReader::readMagic(const std::string& line) {
    version_ = line == kMagic2 ? 2 : line == kMagic1 ? 1 : 0;
    if (version_ == 0) {
        return "not a subproxy migration state file (expected \"" + std::string(kMagic2) + "\")";
    }
    return std::nullopt;
}

MigrationReport::StateFileReader::Problem MigrationReport::StateFileReader::readLine(const std::string& line) {
    if (line.empty()) {
        return std::nullopt;
    }
    std::istringstream fields(line);
    std::string tag;
    fields >> tag;
    if (version_ == 1) {
        return readV1Line(tag, fields);
    }
    if (tag == "today") {
        return readToday(fields);
    }
    if (tag == "total") {
        return readTotal(fields);
    }
    if (tag == "R") {
        return readRecord(fields);
    }
    if (tag == "H") {
        return readHistory(fields);
    }
    if (tag == "T") {
        return readTodayUser(fields);
    }
    return "unknown line \"" + tag + "\"";
}

MigrationReport::StateFileReader::Problem MigrationReport::StateFileReader::readV1Line(const std::string& tag,
                                                                                       std::istream& fields) {
    if (tag == "total") {
        if (!(fields >> v1Total_)) {
            return "bad total";
        }
        return std::nullopt;
    }
    std::string key, other;
    V1Entry e;
    if ((tag != "U" && tag != "A") || !(fields >> key >> e.count >> e.first >> e.last >> other)) {
        return "malformed entry";
    }
    std::string tls;
    if (!(fields >> tls)) {
        tls = "-";  // absent in the first version 1 files
    }
    const auto k = unescapeField(key);
    const auto o = unescapeField(other);
    const auto t = unescapeField(tls);
    if (!k || !o || !t) {
        return "bad %-escape";
    }
    e.other = *o;
    e.tls = *t;
    (tag == "U" ? v1Users_ : v1Addresses_)[*k] = e;
    return std::nullopt;
}

MigrationReport::StateFileReader::Problem MigrationReport::StateFileReader::readToday(std::istream& fields) {
    std::string day;
    std::optional<std::int64_t> d;
    if (!(fields >> day) || !(d = parseDay(day))) {
        return "bad day";
    }
    report_.today_ = *d;
    return std::nullopt;
}

MigrationReport::StateFileReader::Problem MigrationReport::StateFileReader::readTotal(std::istream& fields) {
    int port = -1;
    std::uint64_t n = 0;
    if (!(fields >> port >> n) || !validPort(port)) {
        return "bad total";
    }
    report_.totals_[port] = n;
    return std::nullopt;
}

MigrationReport::StateFileReader::Problem MigrationReport::StateFileReader::readRecord(std::istream& fields) {
    std::string user, address, mech, tls;
    int port = -1;
    MigrationRecord r;
    if (!(fields >> user >> address >> port >> r.count >> r.first >> r.last >> mech >> tls) || !validPort(port)) {
        return "malformed record";
    }
    const auto u = unescapeField(user);
    const auto a = unescapeField(address);
    const auto m = unescapeField(mech);
    const auto t = unescapeField(tls);
    if (!u || !a || !m || !t) {
        return "bad %-escape";
    }
    r.mechanism = *m;
    r.tls = *t;
    report_.records_[{*u, *a, port}] = r;
    return std::nullopt;
}

MigrationReport::StateFileReader::Problem MigrationReport::StateFileReader::readHistory(std::istream& fields) {
    std::string day;
    int port = -1;
    MigrationDay d;
    std::optional<std::int64_t> dayNo;
    if (!(fields >> day >> port >> d.users >> d.submissions) || !(dayNo = parseDay(day)) || !validPort(port)) {
        return "malformed history line";
    }
    report_.history_[{*dayNo, port}] = d;
    return std::nullopt;
}

MigrationReport::StateFileReader::Problem MigrationReport::StateFileReader::readTodayUser(std::istream& fields) {
    std::string who;
    int port = -1;
    if (!(fields >> port >> who) || !validPort(port)) {
        return "malformed today line";
    }
    const auto w = unescapeField(who);
    if (!w) {
        return "bad %-escape";
    }
    auto& users = report_.todayUsers_[port];
    if (users.size() < report_.limits_.maxEntries) {
        users.insert(*w);
    }
    return std::nullopt;
}

MigrationReport MigrationReport::StateFileReader::finish() {
    if (version_ == 1) {
        convertV1();
    }
    report_.trimRecords();
    report_.trimHistory();
    report_.dirty_ = version_ == 1;  // a converted file is written back in the new format
    return std::move(report_);
}

// Users at their last client address; the port was not recorded (0).  An address whose last
// user was unknown keeps its own record; the others' submissions are in a user's.
void MigrationReport::StateFileReader::convertV1() {
    for (const auto& [user, e] : v1Users_) {
        report_.records_[{user, e.other, 0}] = {e.count, e.first, e.last, "", e.tls};
    }
    for (const auto& [address, e] : v1Addresses_) {
        if (e.other.empty()) {
            report_.records_[{"", address, 0}] = {e.count, e.first, e.last, "", e.tls};
        }
    }
    if (v1Total_ > 0) {
        report_.totals_[0] = v1Total_;
    }
}

}  // namespace subproxy
