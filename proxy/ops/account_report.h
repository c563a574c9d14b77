// Compromised accounts (issue 12), the report: `subproxy -r --flags [--json|--csv]` and
// `subproxy -a` list the flagged accounts with the reason and the evidence (counts, addresses,
// first and last seen).  Pure: the accounts come from the state file or the running daemon.
#pragma once
#include <string>
#include <vector>

#include "defence/account_book.h"
#include "ops/migration_report.h"  // MigrationFormat

namespace subproxy {

// Text: one line per flag, "USER REASON first=... last=... count=N evidence".  CSV (RFC 4180,
// with a header) and JSON (an array of {user, flags: [...]}) carry the same fields.
std::string renderAccountFlags(const std::vector<FlaggedAccount>& accounts, MigrationFormat format);

}  // namespace subproxy
