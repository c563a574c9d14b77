#include "pidfile.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace subproxy {

namespace {

// A live process named subproxy (pids are reused: a stale file must not block a start).
bool runningSubproxy(pid_t pid) {
    if (pid <= 0 || pid == ::getpid() || (::kill(pid, 0) != 0 && errno == ESRCH)) {
        return false;
    }
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    std::getline(comm, name);
    return name == "subproxy";
}

}  // namespace

PidFile::PidFile(std::string path, uid_t owner, gid_t group, bool chownIt)
    : path_(std::move(path)), pid_(::getpid()) {
    {
        std::ifstream old(path_);
        long pid = 0;
        if (old >> pid && runningSubproxy(static_cast<pid_t>(pid))) {
            throw std::runtime_error("pid_file " + path_ + ": subproxy is already running as pid " +
                                     std::to_string(pid));
        }
    }
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        throw std::runtime_error("pid_file " + path_ + ": " + std::strerror(errno));
    }
    const std::string text = std::to_string(pid_) + "\n";
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    if (chownIt && ::fchown(fd, owner, group) != 0) {
        // Not fatal: only the clean-up at exit needs it.
    }
    ::close(fd);
    if (!ok) {
        ::unlink(path_.c_str());
        throw std::runtime_error("pid_file " + path_ + ": write failed");
    }
}

PidFile::~PidFile() {
    if (::getpid() != pid_) {
        return;  // a forked child must not remove its parent's file
    }
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT) {
        // The directory belongs to root (e.g. /run) and we no longer do: leave an empty file,
        // which no pidfile reader mistakes for a running process.
        if (::truncate(path_.c_str(), 0) != 0) {
        }
    }
}

}  // namespace subproxy
