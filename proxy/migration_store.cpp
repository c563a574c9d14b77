#include "migration_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "log.h"

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
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0) {
        return tmp + ": " + std::strerror(errno);
    }
    const std::string text = report.serialize();
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            const std::string why = tmp + ": write: " + std::strerror(errno);
            ::close(fd);
            ::unlink(tmp.c_str());
            return why;
        }
        done += static_cast<std::size_t>(n);
    }
    // Without fsync a crash after rename can leave an empty file in place of the old one.
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        const std::string why = tmp + ": " + std::strerror(errno);
        ::unlink(tmp.c_str());
        return why;
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string why = path + ": rename: " + std::strerror(errno);
        ::unlink(tmp.c_str());
        return why;
    }
    return {};
}

MigrationStore::MigrationStore(event_base* base, MigrationReport& report, std::string path, int flushInterval)
    : report_(report), path_(std::move(path)) {
    if (path_.empty()) {
        return;
    }
    std::string error;
    auto loaded = readMigrationFile(path_, report_.limits(), &error);
    if (loaded) {
        report_ = std::move(*loaded);  // trimmed to the limits by parse(); dirty if converted
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
    if (path_.empty() || !report_.dirty()) {
        return true;
    }
    const std::string error = writeMigrationFile(path_, report_);
    if (!error.empty()) {
        logWarning("migration.state_file: cannot write " + error);
        return false;
    }
    report_.markClean();
    return true;
}

void MigrationStore::timerCb(evutil_socket_t, short, void* self) { static_cast<MigrationStore*>(self)->flush(); }

}  // namespace subproxy
