#include "ops/migration_report.h"

#include "ops/config.h"

#include <algorithm>

namespace subproxy {

namespace {

// The ports subproxy exists to intercept: their metric series exist from the start, so that
// alerts and graphs need no absent() special case before the first submission.
constexpr int kInterceptedPorts[] = {25, 465};


}  // namespace

std::string migrationIdentity(const std::string& user, const std::string& address) {
    return user.empty() ? "@" + address : user;
}

MigrationLimits migrationLimits(const MigrationConfig& config) {
    return {static_cast<std::size_t>(config.maxEntries), config.historyDays};
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
