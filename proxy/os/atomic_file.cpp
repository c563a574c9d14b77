#include "os/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "wire/text_util.h"

namespace subproxy {

namespace {

// Creates `tmp` afresh.  A name that is already there is removed and the create tried again;
// if it keeps coming back, someone is racing us in the directory: give up rather than loop.
int createFresh(const std::string& tmp, mode_t mode, std::string& error) {
    for (int attempt = 0; attempt < 3; ++attempt) {
        if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) {
            error = "cannot remove " + tmp + " (left by another process or user?): " + std::strerror(errno);
            return -1;
        }
        const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd >= 0) {
            return fd;
        }
        if (errno != EEXIST) {
            error = "cannot create " + tmp + ": " + std::strerror(errno);
            return -1;
        }
    }
    error = "cannot create " + tmp + ": the name keeps reappearing (another user writing in the directory?)";
    return -1;
}

}  // namespace

bool writeAll(int fd, std::string_view data) {
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    return true;
}

bool writeFileAtomically(const std::string& path, std::string_view text, mode_t mode, std::string& error,
                         const std::optional<FileOwner>& owner) {
    // Same directory, so rename(2) replaces the old file in one step.  The pid keeps two
    // writers of one file (the daemon and `subproxy -u` without a daemon) off each other's
    // temporary file.
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    const int fd = createFresh(tmp, mode, error);
    if (fd < 0) {
        return false;
    }
    auto fail = [&](const std::string& what) {
        error = what + ": " + std::strerror(errno);
        ::close(fd);
        ::unlink(tmp.c_str());
        return false;
    };
    if (::fchmod(fd, mode) != 0) {
        return fail("cannot set the mode of " + tmp);
    }
    if (owner && ::fchown(fd, owner->uid, owner->gid) != 0) {
        return fail("cannot give " + tmp + " to uid " + std::to_string(owner->uid));
    }
    if (!writeAll(fd, text)) {
        return fail("cannot write " + tmp);
    }
    // Without fsync a crash after the rename can leave an empty file in place of the old one.
    if (::fsync(fd) != 0) {
        return fail("cannot write " + tmp);
    }
    if (::close(fd) != 0) {
        error = "cannot write " + tmp + ": " + std::strerror(errno);
        ::unlink(tmp.c_str());
        return false;
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        error = "cannot rename " + tmp + " to " + path + ": " + std::strerror(errno);
        ::unlink(tmp.c_str());
        return false;
    }
    // The rename itself is durable once the directory is synced.  Failing that is not a
    // failed write (the new file is in place), so it is not reported.
    const int dir = ::open(directoryOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        ::fsync(dir);
        ::close(dir);
    }
    return true;
}

}  // namespace subproxy
