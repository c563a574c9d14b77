// The process_* figures of /metrics, read from /proc at scrape time (metrics.h parses them).
#pragma once
#include <optional>

#include "ops/metrics.h"

namespace subproxy {

// /proc/self/stat, the entries of /proc/self/fd and the soft RLIMIT_NOFILE (all readable
// under the unit's ProcSubset=pid).  nullopt when /proc is not mounted or unreadable: the
// process_* families are left out rather than served as zeros.
std::optional<ProcessFigures> readProcessFigures();

}  // namespace subproxy
