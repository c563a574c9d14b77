// `subproxy -t`, deployment part: when subproxy will drop to `user`, can that account still
// read (or write) every file it needs after start-up — at SIGHUP (config, certificates,
// Cyrus file), per AUTH (sasldb, saslauthd mux) and for the migration state file?
#pragma once
#include <string>
#include <vector>

#include "config.h"

namespace subproxy {

// One "FILE:LINE: message" per problem; empty when all is well.  The pid file's directory is
// checked for the account running the check (the one that will create the file); the rest
// only when running as root with an unprivileged `user`, as that user.
std::vector<std::string> deploymentProblems(const Config& config, const std::string& configFile);

// `subproxy -r`: prints the migration report from the state file; returns the exit code.
int printMigrationReport(const Config& config);

}  // namespace subproxy
