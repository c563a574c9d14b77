// The migration report of several gateways (issue 11), the pure part of reading it back from
// Redis: the index members and the hashes the migration script writes (shared_state_keys.h)
// into MigrationReport records.  io/shared_cli.cpp fetches them for `subproxy -r`.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "defence/shared_state_keys.h"
#include "ops/migration_report.h"

namespace subproxy {

// "USER ADDRESS PORT" (SharedStateKeys::migrationMember) back into its key.
std::optional<MigrationKey> parseMigrationMember(const std::string& member);
// An HGETALL of a record: count, first, last, mech, tls.  nullopt when it is gone (expired
// between the index read and this one) or unreadable.
std::optional<MigrationRecord> parseMigrationHash(const RedisValue& hash);
// An HGETALL of port -> number (a day's submissions, the totals); unreadable fields are skipped.
std::map<int, std::uint64_t> parsePortCounts(const RedisValue& hash);

}  // namespace subproxy
