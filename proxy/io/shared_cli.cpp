// See shared_cli.h.
#include "io/shared_cli.h"

#include <iostream>

#include "defence/ban_list.h"
#include "defence/fleet_accounts.h"
#include "defence/shared_state_keys.h"
#include "io/guard_state_file.h"
#include "io/redis_sync.h"
#include "ops/account_report.h"
#include "ops/migration_shared.h"
#include "wire/text_util.h"

namespace subproxy {

SharedStateCheck checkSharedState(const StateConfig& config) {
    using Result = SharedStateCheck::Result;
    try {
        RedisSync redis(config);
        const RedisValue pong = redis.command({"PING"});
        if (pong.isError()) {
            return {Result::Refused, "Redis at " + config.address + " refused PING: " + printable(pong.str)};
        }
        return {Result::Ok, "Redis at " + config.address + " answers PING" +
                                (config.username.empty() ? std::string() : " (ACL user " + config.username + ")")};
    } catch (const RedisRefused& e) {
        return {Result::Refused, e.what()};
    } catch (const std::exception& e) {
        return {Result::Unreachable, e.what()};
    }
}

int sharedGuardCommandLine(const Config& config, const std::string& command) {
    const SharedStateKeys keys(config.state.keyPrefix);
    const std::int64_t now = wallNow();
    try {
        RedisSync redis(config.state);
        if (command == "list") {
            const RedisValue reply = redis.command({"EVAL", kListBansScript, "2", keys.bans(), keys.banFailures(),
                                                    std::to_string(now)});
            const auto bans = parseBanList(reply);
            if (!bans) {
                std::cerr << "subproxy: Redis at " << config.state.address << " did not list the bans"
                          << (reply.isError() ? ": " + printable(reply.str) : std::string()) << "\n";
                return 1;
            }
            std::cout << listSharedBans(*bans, now);
            return 0;
        }
        const std::string arg = command.substr(5);  // "lift ADDRESS"
        const std::string key = BanList(config.guard.policy).keyFor(arg);
        const RedisValue reply =
            redis.command({"EVAL", kLiftScript, "3", keys.bans(), keys.banFailures(), keys.addressFailures(key), key,
                           keys.events(), std::to_string(now)});
        const auto lifted = reply.asInteger();
        if (!lifted) {
            std::cerr << "subproxy: Redis at " << config.state.address << " did not lift the ban"
                      << (reply.isError() ? ": " + printable(reply.str) : std::string()) << "\n";
            return 1;
        }
        if (*lifted == 0) {
            std::cerr << "error: " << printable(arg) << " is not banned; nothing changed\n";
            return 1;
        }
        std::cout << "lifted " << key << " on every gateway (in Redis at " << config.state.address
                  << "; no daemon was listening on the control socket)\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "subproxy: " << e.what() << "\n";
        return 1;
    }
}

int sharedAccountsCommandLine(const Config& config, const std::string& command, const std::string& key,
                              bool clearedInFile) {
    const FleetAccountKeys keys(config.state.keyPrefix);
    try {
        RedisSync redis(config.state);
        if (command == "list") {
            const RedisValue reply = redis.command({"HGETALL", keys.flags()});
            const auto flags = parseFleetFlags(reply);
            if (!flags) {
                throw std::runtime_error("Redis at " + config.state.address + " did not list the flagged accounts" +
                                         (reply.isError() ? ": " + printable(reply.str) : std::string()));
            }
            std::cout << renderAccountFlags(flags->flagged, MigrationFormat::Text)
                      << unreadableFlagsNote(flags->unreadable);
            return 0;
        }
        const ScriptCall call = fleetClearCall(keys, key, clearedInFile, wallNow());
        std::vector<std::string> argv{"EVAL", call.script, std::to_string(call.keys.size())};
        argv.insert(argv.end(), call.keys.begin(), call.keys.end());
        argv.insert(argv.end(), call.args.begin(), call.args.end());
        const RedisValue reply = redis.command(argv);
        const auto removed = reply.asInteger();
        if (!removed) {
            throw std::runtime_error("Redis at " + config.state.address + " did not clear the account" +
                                     (reply.isError() ? ": " + printable(reply.str) : std::string()));
        }
        if (*removed == 0 && !clearedInFile) {
            std::cerr << "error: " << printable(command.substr(6)) << " is not flagged; nothing changed\n";
            return 1;
        }
        std::cout << "cleared " << printable(key) << " on every gateway (in Redis at " << config.state.address
                  << "; no daemon was listening on the control socket)\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "subproxy: " << e.what() << "\n";
        return 1;
    }
}

namespace {

// The records the index lists (last submission within history_days), one HGETALL each.
void readRecords(RedisSync& redis, const SharedStateKeys& keys, std::int64_t since, MigrationReport& report) {
    const RedisValue index =
        redis.command({"ZRANGEBYSCORE", keys.migrationIndex(), std::to_string(since), "+inf"});
    if (index.isError()) {
        throw std::runtime_error("ZRANGEBYSCORE " + keys.migrationIndex() + ": " + printable(index.str));
    }
    std::vector<std::vector<std::string>> reads;
    std::vector<MigrationKey> wanted;
    for (const auto& member : index.elements) {
        if (const auto key = parseMigrationMember(member.str)) {
            reads.push_back({"HGETALL", keys.migrationRecord(member.str)});
            wanted.push_back(*key);
        }
    }
    const auto hashes = reads.empty() ? std::vector<RedisValue>() : redis.pipeline(reads);
    for (std::size_t i = 0; i < hashes.size(); ++i) {
        if (const auto record = parseMigrationHash(hashes[i])) {
            report.restoreRecord(wanted[i], *record);
        }
    }
}

// Per day kept: submissions per port, then each port's distinct users; and the totals.
void readHistory(RedisSync& redis, const SharedStateKeys& keys, std::int64_t today, int days,
                 MigrationReport& report) {
    std::vector<std::vector<std::string>> reads;
    for (std::int64_t d = today - days + 1; d <= today; ++d) {
        reads.push_back({"HGETALL", keys.migrationDay(d)});
    }
    const auto dayHashes = redis.pipeline(reads);
    std::vector<std::vector<std::string>> counts;
    std::vector<std::pair<std::int64_t, std::pair<int, std::uint64_t>>> cells;
    for (std::size_t i = 0; i < dayHashes.size(); ++i) {
        const std::int64_t day = today - days + 1 + static_cast<std::int64_t>(i);
        for (const auto& [port, submissions] : parsePortCounts(dayHashes[i])) {
            counts.push_back({"PFCOUNT", keys.migrationUsers(day, port)});
            cells.push_back({day, {port, submissions}});
        }
    }
    const auto users = counts.empty() ? std::vector<RedisValue>() : redis.pipeline(counts);
    for (std::size_t i = 0; i < users.size(); ++i) {
        const auto n = users[i].asInteger();
        report.restoreDay(cells[i].first, cells[i].second.first,
                          MigrationDay{static_cast<std::uint64_t>(n.value_or(0)), cells[i].second.second});
    }
    for (const auto& [port, total] : parsePortCounts(redis.command({"HGETALL", keys.migrationTotals()}))) {
        report.restoreTotal(port, total);
    }
}

}  // namespace

int printSharedMigrationReport(const Config& config, const MigrationQuery& query, std::int64_t now) {
    const SharedStateKeys keys(config.state.keyPrefix);
    const MigrationLimits limits = migrationLimits(config.migration);
    MigrationReport report(limits);
    try {
        RedisSync redis(config.state);
        readRecords(redis, keys, now - static_cast<std::int64_t>(limits.historyDays) * 86400, report);
        readHistory(redis, keys, utcDay(now), limits.historyDays, report);
    } catch (const std::exception& e) {
        std::cerr << "subproxy: the fleet's migration report (state.backend \"redis\"): " << e.what() << "\n";
        return 1;
    }
    std::cout << report.render(query, now);
    return 0;
}

}  // namespace subproxy
