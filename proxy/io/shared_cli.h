// The command line's side of several gateways (state.backend "redis"; issue 11): a separate
// process talking to Redis directly (redis_sync.h), for when no daemon is there to ask.
#pragma once
#include <cstdint>
#include <string>

#include "ops/config.h"
#include "ops/migration_report.h"

namespace subproxy {

// `subproxy -t`: logs in and sends PING.  `text` says how it answered, or why not.
struct SharedStateCheck {
    enum class Result { Ok, Unreachable, Refused };  // Refused: the login or PING (ACL)
    Result result = Result::Ok;
    std::string text;
};
SharedStateCheck checkSharedState(const StateConfig& config);
// `subproxy -b` / `-u ADDRESS` when no daemon answers on the control socket: the fleet's list,
// or a lift on every gateway (the running ones hear it on the events channel).  Prints the
// answer; returns the exit code.
int sharedGuardCommandLine(const Config& config, const std::string& command);
// `subproxy -a` ("list") / `-A USER` ("clear USER", `key` the account) when no daemon answers:
// the fleet's flagged accounts, or a clear on every gateway (the running ones hear it on the
// events channel).  `clearedInFile`: the caller cleared a flag in accounts.state_file.  Prints
// the answer; returns the exit code.
int sharedAccountsCommandLine(const Config& config, const std::string& command, const std::string& key,
                              bool clearedInFile);
// `subproxy -r`: the fleet's migration report, every gateway's submissions together.
int printSharedMigrationReport(const Config& config, const MigrationQuery& query, std::int64_t now);

}  // namespace subproxy
