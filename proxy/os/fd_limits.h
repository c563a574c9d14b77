// File descriptors: the process limit, and what the configuration needs of it.  Each customer
// session holds two (the customer and the MSA); running out makes accept() fail with EMFILE.
#pragma once
#include <cstdint>
#include <string>

#include "ops/config.h"

namespace subproxy {

// Raises the soft RLIMIT_NOFILE to the hard limit (no privilege needed), as nginx's
// worker_rlimit_nofile and Postfix do; returns the soft limit in force afterwards.
std::uint64_t raiseFileLimit();

// Descriptors `config` may need at once: two per session plus listeners, the status endpoint,
// the SASL workers, logs, resolver, state files and the accept reserve.
std::uint64_t filesNeeded(const Config& config);

// "" when `limit` fits `config`, else a warning naming limits.max_sessions and what to raise.
std::string fileLimitWarning(const Config& config, std::uint64_t limit);

}  // namespace subproxy
