// The pidfile: written by the daemon (after it went to the background), removed at exit.
#pragma once
#include <sys/types.h>

#include <string>

namespace subproxy {

// The pid of the running subproxy that `path` names, or 0 (no file, no number, or that
// process is gone or is not subproxy).  Needs no privilege: a daemon running as another user
// still counts.
pid_t runningSubproxyPid(const std::string& path);

class PidFile {
public:
    // Writes getpid() to `path`; refuses (throws std::runtime_error) when it names a running
    // subproxy.  With `owner` set, the file is handed to that account so that the daemon,
    // after dropping privileges, can still empty it at exit if it cannot remove it.
    PidFile(std::string path, uid_t owner, gid_t group, bool chownIt);
    ~PidFile();
    PidFile(const PidFile&) = delete;
    PidFile& operator=(const PidFile&) = delete;

private:
    std::string path_;
    pid_t pid_;
};

}  // namespace subproxy
