#include "os/daemon.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace subproxy {

void Daemonizer::detach() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        throw std::runtime_error(std::string("cannot go to the background: pipe: ") + std::strerror(errno));
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
        throw std::runtime_error(std::string("cannot go to the background: fork: ") + std::strerror(errno));
    }
    if (pid > 0) {
        ::close(fds[1]);
        char byte = 0;
        ssize_t n;
        while ((n = ::read(fds[0], &byte, 1)) < 0 && errno == EINTR) {
        }
        if (n == 1) {
            std::_Exit(0);  // the child is serving; skip our static destructors
        }
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        std::_Exit(WIFEXITED(status) && WEXITSTATUS(status) != 0 ? WEXITSTATUS(status) : 1);
    }
    ::close(fds[0]);
    fd_ = fds[1];
    ::setsid();
    if (::chdir("/") != 0) {
    }
}

void Daemonizer::ready() {
    if (fd_ < 0) {
        return;
    }
    const int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
        ::dup2(null, 0);
        ::dup2(null, 1);
        ::dup2(null, 2);
        if (null > 2) {
            ::close(null);
        }
    }
    const char byte = 1;
    if (::write(fd_, &byte, 1) != 1) {
    }
    ::close(fd_);
    fd_ = -1;
}

}  // namespace subproxy
