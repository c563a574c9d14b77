// Going to the background without losing start-up errors: the parent waits until the child
// has bound its sockets, dropped privileges and written the pidfile (ready()) and exits 0, or
// exits with the child's status when the child fails first.  Unlike daemon(3) called after
// start-up, threads (the SASL workers) and the event loop are created in the child.
#pragma once

namespace subproxy {

class Daemonizer {
public:
    // Forks.  Returns in the child (new session, cwd /); the parent never returns.
    void detach();
    // The child serves: stdin/stdout/stderr to /dev/null, release the waiting parent.
    void ready();

private:
    int fd_ = -1;
};

}  // namespace subproxy
