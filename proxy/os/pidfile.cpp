#include "os/pidfile.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "os/atomic_file.h"

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

pid_t runningSubproxyPid(const std::string& path) {
    std::ifstream in(path);
    long pid = 0;
    return in >> pid && runningSubproxy(static_cast<pid_t>(pid)) ? static_cast<pid_t>(pid) : 0;
}

PidFile::PidFile(std::string path, uid_t owner, gid_t group, bool chownIt)
    : path_(std::move(path)), pid_(::getpid()) {
    if (const pid_t running = runningSubproxyPid(path_)) {
        throw std::runtime_error("pid_file " + path_ + ": subproxy is already running as pid " +
                                 std::to_string(running));
    }
    // Through the shared helper: a link planted at the name (or at its temporary file) is
    // replaced or refused, never followed, though the daemon may still be root here.
    std::string error;
    if (!writeFileAtomically(path_, std::to_string(pid_) + "\n", 0644, error,
                             chownIt ? std::optional<FileOwner>(FileOwner{owner, group}) : std::nullopt)) {
        throw std::runtime_error("pid_file " + path_ + ": " + error);
    }
}

PidFile::~PidFile() {
    if (::getpid() != pid_) {
        return;  // a forked child must not remove its parent's file
    }
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT) {
        // The directory belongs to root (e.g. /run) and we no longer do: leave an empty file,
        // which no pidfile reader mistakes for a running process.  Not through a symlink
        // someone put in its place: truncate(2) would follow it.
        const int fd = ::open(path_.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            if (::ftruncate(fd, 0) != 0) {
            }
            ::close(fd);
        }
    }
}

}  // namespace subproxy
