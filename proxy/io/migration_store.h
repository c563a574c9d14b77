// The migration report's state file: loaded at start, written atomically (temp file, fsync,
// rename) on a timer when something changed and once more at exit.  The file is small
// (bounded by migration.max_entries), so a write on the control loop every flush_interval
// seconds is acceptable; per message it would not be.  The report is serialised under its lock
// and written outside it: the worker loops keep recording while the disk works.
#pragma once
#include <event2/event.h>

#include <memory>
#include <optional>
#include <string>

#include "io/locked.h"
#include "ops/migration_report.h"

namespace subproxy {

class MigrationStore {
public:
    // Loads `path` into `report`, under the report's limits (a missing file is an empty
    // report; a corrupt one is logged, kept as PATH.bad and replaced; a version 1 file is
    // converted and rewritten at the first flush).  Empty path: memory only.
    MigrationStore(event_base* base, Locked<MigrationReport>& report, std::string path, int flushInterval);
    ~MigrationStore();  // flushes
    MigrationStore(const MigrationStore&) = delete;
    MigrationStore& operator=(const MigrationStore&) = delete;

    bool flush();  // false (and logged) on error; the report stays dirty and is tried again

private:
    static void timerCb(evutil_socket_t, short, void* self);

    struct TimerFree {
        void operator()(event* ev) const { event_free(ev); }
    };
    Locked<MigrationReport>& report_;  // the loops record into it meanwhile
    std::string path_;
    std::unique_ptr<event, TimerFree> timer_;
};

// Reads a state file: the report, or nullopt with *error set.  A missing file is empty.
std::optional<MigrationReport> readMigrationFile(const std::string& path, MigrationLimits limits,
                                                 std::string* error);
// Writes atomically; "" on success, else why.
std::string writeMigrationFile(const std::string& path, const MigrationReport& report);

}  // namespace subproxy
