// `subproxy -t`, deployment part: when subproxy will drop to `user`, can that account still
// read (or write) every file it needs after start-up — at SIGHUP (config, certificates,
// Cyrus file), per AUTH (sasldb, saslauthd mux) and for the migration state file?  And is
// any directory it writes in open to other local users?
#pragma once
#include <string>
#include <vector>

#include "ops/config.h"
#include "ops/migration_report.h"

namespace subproxy {

// One "FILE:LINE: message" per problem; empty when all is well.  The pid file's directory is
// checked for the account running the check (the one that will create the file); the rest
// only when running as root with an unprivileged `user`, as that user.
std::vector<std::string> deploymentProblems(const Config& config, const std::string& configFile);

// Warnings that do not fail the check: directories the daemon writes in (the state files, the
// pid file, the control socket) that a local user other than root and the daemon's account
// can write.  One "FILE:LINE: warning: ..." per directory.
std::vector<std::string> deploymentWarnings(const Config& config, const std::string& configFile);

// `subproxy -r`: prints the migration report from the state file as `query` asks, `now`
// being the time --since and the history are relative to; returns the exit code.
int printMigrationReport(const Config& config, const MigrationQuery& query, std::int64_t now);

}  // namespace subproxy
