#include "os/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <ctime>
#include <stdexcept>

#include "os/atomic_file.h"
#include "os/syslog_client.h"
#include "wire/text_util.h"

namespace subproxy {

namespace {

bool toStderr = true;  // until logOpen: start-up errors must be seen
// The log file's descriptor.  Reopening replaces the file under this same number (dup3), so
// a worker thread writing meanwhile uses the old file or the new one, never a closed number.
std::atomic<int> fileFd{-1};
std::string filePath;  // set once, before any thread but the main one runs

// Opens `path` for appending; -1 with `error` set on failure.  O_NOFOLLOW: root may open it
// (before dropping privileges) in a directory the service account can write.
int openForAppend(const std::string& path, bool& created, std::string& error) {
    constexpr int kFlags = O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY;
    int fd = ::open(path.c_str(), kFlags | O_CREAT | O_EXCL, 0640);
    created = fd >= 0;
    if (fd < 0 && errno == EEXIST) {
        fd = ::open(path.c_str(), kFlags | O_NONBLOCK);  // a FIFO planted there must not hang us
    }
    if (fd < 0) {
        error = errno == ELOOP ? "is a symbolic link" : std::strerror(errno);
        return -1;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        error = "not a regular file";
        return -1;
    }
    ::fcntl(fd, F_SETFL, O_WRONLY | O_APPEND);  // blocking writes: a local file does not stall
    return fd;
}

// One write(2) per line: O_APPEND keeps lines from several threads (and from the process
// before and after logrotate's rename) whole.
void writeLine(int fd, const std::string& text) {
    writeAll(fd, text);  // disk full or the like: syslog and stderr still have the line
}

std::string stamp() {
    timespec now {};
    ::clock_gettime(CLOCK_REALTIME, &now);
    std::tm local {};
    ::localtime_r(&now.tv_sec, &local);
    return formatRfc3339(now.tv_sec, now.tv_nsec / 1000, local.tm_gmtoff);
}

// One line at a time into every sink: with several event loops, two threads logging at once
// would otherwise leave syslog, standard error and log_file with the lines in different orders.
std::mutex emitting;

void emit(int priority, const char* tag, const std::string& line) {
    std::lock_guard<std::mutex> lock(emitting);  // time stamps in the file's order, too
    syslogLine(priority, tag + line);
    if (toStderr) {
        std::fprintf(stderr, "subproxy: %s%s\n", tag, line.c_str());
    }
    if (const int fd = fileFd.load(); fd >= 0) {
        writeLine(fd, stamp() + " subproxy[" + std::to_string(cachedPid()) + "]: " + tag + line + "\n");
    }
}

}  // namespace

bool stderrIsTheJournal() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    unsigned long long device = 0;
    unsigned long long inode = 0;
    struct stat st {};
    return stream && std::sscanf(stream, "%llu:%llu", &device, &inode) == 2 && ::fstat(STDERR_FILENO, &st) == 0 &&
           static_cast<unsigned long long>(st.st_dev) == device && static_cast<unsigned long long>(st.st_ino) == inode;
}

void logOpen(int facility, bool alsoStderr) {
    syslogOpen(facility);
    toStderr = alsoStderr;
}

void logToStderr(bool on) { toStderr = on; }

void logOpenFile(const std::string& path, const std::optional<FileOwner>& owner) {
    bool created = false;
    std::string error;
    const int fd = openForAppend(path, created, error);
    if (fd < 0) {
        throw std::runtime_error("log_file " + path + ": cannot open: " + error);
    }
    // Only a file we made changes hands: an existing one keeps the owner the operator gave it.
    if (created && owner && ::fchown(fd, owner->uid, owner->gid) != 0) {
        error = std::strerror(errno);
        ::close(fd);
        throw std::runtime_error("log_file " + path + ": cannot hand it to the service account: " + error);
    }
    filePath = path;
    fileFd.store(fd);
}

std::string logReopenFile() {
    const int old = fileFd.load();
    if (old < 0) {
        return {};
    }
    bool created = false;
    std::string error;
    const int fd = openForAppend(filePath, created, error);
    if (fd < 0) {
        return "log_file " + filePath + ": cannot reopen: " + error + "; still writing to the file opened before";
    }
    // The old file is closed and the new one takes its number.
    if (::dup3(fd, old, O_CLOEXEC) < 0) {
        error = std::strerror(errno);
        ::close(fd);
        return "log_file " + filePath + ": cannot reopen: " + error;
    }
    ::close(fd);
    return {};
}

const std::string& logFilePath() { return filePath; }

void logInfo(const std::string& line) { emit(LOG_INFO, "", line); }
void logWarning(const std::string& line) { emit(LOG_WARNING, "warning: ", line); }
void logError(const std::string& line) { emit(LOG_ERR, "error: ", line); }

}  // namespace subproxy
