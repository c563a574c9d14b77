#include "io/migration_store.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "os/atomic_file.h"
#include "os/log.h"

namespace subproxy {

std::optional<MigrationReport> readMigrationFile(const std::string& path, MigrationLimits limits,
                                                 std::string* error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        if (errno == ENOENT) {
            return MigrationReport(limits);
        }
        *error = path + ": " + std::strerror(errno);
        return std::nullopt;
    }
    std::ostringstream text;
    text << in.rdbuf();
    std::string why;
    auto report = MigrationReport::parse(text.str(), limits, &why);
    if (!report) {
        *error = path + ": " + why;
    }
    return report;
}

std::string writeMigrationFile(const std::string& path, const MigrationReport& report) {
    std::string error;
    // 0640: logins and client addresses, for the operator's group, not for every local user.
    if (!writeFileAtomically(path, report.serialize(), 0640, error)) {
        return error;
    }
    return {};
}

MigrationStore::MigrationStore(event_base* base, Locked<MigrationReport>& report, std::string path,
                               int flushInterval)
    : report_(report), path_(std::move(path)) {
    if (path_.empty()) {
        return;
    }
    std::string error;
    auto loaded = readMigrationFile(path_, report_.with([](MigrationReport& r) { return r.limits(); }), &error);
    if (loaded) {
        // Trimmed to the limits by parse(); dirty if converted.
        report_.with([&](MigrationReport& r) { r = std::move(*loaded); });
    } else {
        // Unreadable: say so and leave it (the next flush replaces it if the directory allows).
        // Corrupt: keep it for the operator as PATH.bad.
        const bool corrupt = ::access(path_.c_str(), R_OK) == 0;
        logWarning("migration.state_file " + error + "; starting an empty report" +
                   (corrupt ? " (the old file is kept as " + path_ + ".bad)" : std::string()));
        if (corrupt && ::rename(path_.c_str(), (path_ + ".bad").c_str()) != 0) {
            logWarning("migration.state_file: cannot rename " + path_ + ": " + std::strerror(errno));
        }
    }
    timer_.reset(event_new(base, -1, EV_PERSIST, &MigrationStore::timerCb, this));
    const timeval every{flushInterval, 0};
    event_add(timer_.get(), &every);
}

MigrationStore::~MigrationStore() {
    timer_.reset();
    flush();
}

bool MigrationStore::flush() {
    if (path_.empty()) {
        return true;
    }
    std::string text;
    const bool dirty = report_.with([&](MigrationReport& r) {
        if (!r.dirty()) {
            return false;
        }
        text = r.serialize();
        r.markClean();  // a record after this point makes it dirty again
        return true;
    });
    if (!dirty) {
        return true;
    }
    std::string error;
    // 0640: logins and client addresses, for the operator's group, not for every local user.
    if (!writeFileAtomically(path_, text, 0640, error)) {
        logWarning("migration.state_file: cannot write " + path_ + ": " + error);
        report_.with([](MigrationReport& r) { r.markDirty(); });  // tried again at the next flush
        return false;
    }
    return true;
}

void MigrationStore::timerCb(evutil_socket_t, short, void* self) { static_cast<MigrationStore*>(self)->flush(); }

}  // namespace subproxy
