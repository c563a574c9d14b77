// See migration_shared.h; and MigrationReport's restore*() (migration_report.h).
#include "ops/migration_shared.h"

#include <sstream>

namespace subproxy {

void MigrationReport::restoreRecord(const MigrationKey& key, const MigrationRecord& record) {
    records_[key] = record;
    trimRecords();
}

void MigrationReport::restoreDay(std::int64_t day, int port, const MigrationDay& figures) {
    history_[{day, port}] = figures;
}

void MigrationReport::restoreTotal(int port, std::uint64_t submissions) { totals_[port] = submissions; }

std::optional<MigrationKey> parseMigrationMember(const std::string& member) {
    std::istringstream in(member);
    std::string user, address, extra;
    int port = -1;
    if (!(in >> user >> address >> port) || (in >> extra) || port < 0 || port > 65535) {
        return std::nullopt;
    }
    const auto u = unescapeField(user);
    const auto a = unescapeField(address);
    if (!u || !a) {
        return std::nullopt;
    }
    return MigrationKey{*u, *a, port};
}

std::optional<MigrationRecord> parseMigrationHash(const RedisValue& hash) {
    if (hash.type != RedisValue::Type::Array || hash.elements.empty() || hash.elements.size() % 2 != 0) {
        return std::nullopt;
    }
    MigrationRecord r;
    bool counted = false;
    for (std::size_t i = 0; i < hash.elements.size(); i += 2) {
        const std::string& field = hash.elements[i].str;
        const RedisValue& value = hash.elements[i + 1];
        if (field == "mech" || field == "tls") {
            (field == "mech" ? r.mechanism : r.tls) = value.str;
            continue;
        }
        const auto n = value.asInteger();
        if (!n || *n < 0) {
            return std::nullopt;
        }
        if (field == "count") {
            r.count = static_cast<std::uint64_t>(*n);
            counted = true;
        } else if (field == "first") {
            r.first = *n;
        } else if (field == "last") {
            r.last = *n;
        }
    }
    if (!counted || r.count == 0) {
        return std::nullopt;
    }
    return r;
}

std::map<int, std::uint64_t> parsePortCounts(const RedisValue& hash) {
    std::map<int, std::uint64_t> out;
    if (hash.type != RedisValue::Type::Array || hash.elements.size() % 2 != 0) {
        return out;
    }
    for (std::size_t i = 0; i < hash.elements.size(); i += 2) {
        const auto p = hash.elements[i].asInteger();
        const auto n = hash.elements[i + 1].asInteger();
        if (p && n && *p >= 0 && *p <= 65535 && *n >= 0) {
            out[static_cast<int>(*p)] = static_cast<std::uint64_t>(*n);
        }
    }
    return out;
}

}  // namespace subproxy
