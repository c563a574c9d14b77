// Every file the daemon writes (guard.state_file, migration.state_file, pid_file) is written
// here, and only here: as a temporary file next to it, then renamed over it.  The directory
// may be one that other local users can write (a careless /var/tmp, a group-writable state
// directory), so nothing is ever opened through a name another user could have prepared:
// the temporary file is created with O_CREAT|O_EXCL|O_NOFOLLOW (a planted symlink or file
// makes the open fail instead of being followed or truncated), and rename(2) replaces the
// target name itself, never what a symlink there points to.
#pragma once
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

namespace subproxy {

struct FileOwner {
    uid_t uid = 0;
    gid_t gid = 0;
};

// Writes all of `data` to `fd`, retrying short writes and EINTR; false on any other error
// (errno tells).  For files, where write(2) blocks rather than returning EAGAIN.
bool writeAll(int fd, std::string_view data);

// Writes `text` to `path`: PATH.tmp.<pid> (a stale one left by a crashed run with the same
// pid is unlinked first; unlink(2) removes a symlink, not its target), fsync, rename over
// `path`, fsync of the directory, so a crash leaves the old content or the new, never half.
// The file gets exactly `mode` (not widened or narrowed by the umask) and, when `owner` is
// given, that owner.  On failure nothing is left behind and `error` says what failed.
bool writeFileAtomically(const std::string& path, std::string_view text, mode_t mode, std::string& error,
                         const std::optional<FileOwner>& owner = std::nullopt);

}  // namespace subproxy
