#include "os/privileges.h"

#include <grp.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace subproxy {

Account lookupAccount(const std::string& user, const std::string& group) {
    Account account;
    account.user = user;
    errno = 0;
    const passwd* pw = ::getpwnam(user.c_str());
    if (pw == nullptr) {
        throw std::runtime_error("user: no such user \"" + user + "\"" +
                                 (errno ? std::string(": ") + std::strerror(errno) : std::string()));
    }
    account.uid = pw->pw_uid;
    account.gid = pw->pw_gid;
    if (!group.empty()) {
        const struct group* gr = ::getgrnam(group.c_str());
        if (gr == nullptr) {
            throw std::runtime_error("group: no such group \"" + group + "\"");
        }
        account.gid = gr->gr_gid;
    }
    return account;
}

void dropPrivileges(const Account& account) {
    // Supplementary groups first (needs root), then the group, then the user: in the other
    // order the later calls would no longer be permitted.
    if (::initgroups(account.user.c_str(), account.gid) != 0) {
        throw std::runtime_error("initgroups(" + account.user + "): " + std::strerror(errno));
    }
    if (::setgid(account.gid) != 0) {
        throw std::runtime_error("setgid(" + std::to_string(account.gid) + "): " + std::strerror(errno));
    }
    if (::setuid(account.uid) != 0) {
        throw std::runtime_error("setuid(" + std::to_string(account.uid) + "): " + std::strerror(errno));
    }
    if (account.uid != 0 && (::setuid(0) == 0 || ::seteuid(0) == 0)) {
        throw std::runtime_error("privileges could be regained after setuid; refusing to run");
    }
}

namespace {

// In the child, after the fork: drops to the account and tries every file as it.  One
// "where: path: why" line per problem.
std::string accessProblemsAs(const Account& account, const std::vector<FileNeed>& files) {
    std::string out;
    try {
        dropPrivileges(account);
        for (const auto& f : files) {
            // access() checks the real IDs, which are now the account's.
            if (::access(f.path.c_str(), f.mode) != 0) {
                const char* what = f.mode & W_OK ? (f.mode & R_OK ? "read and write" : "write") : "read";
                out += f.where + ": " + f.path + ": user " + account.user + " cannot " + what + " it (" +
                       std::strerror(errno) + ")\n";
            }
        }
    } catch (const std::exception& e) {
        out += std::string(e.what()) + "\n";
    }
    return out;
}

void writeAll(int fd, const std::string& text) {
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n <= 0) {
            break;
        }
        done += static_cast<std::size_t>(n);
    }
}

std::string readAll(int fd) {
    std::string in;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        in.append(buf, static_cast<std::size_t>(n));
    }
    return in;
}

// Every line that ends in '\n' (the child writes only whole lines).
std::vector<std::string> completeLines(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    for (std::size_t nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', start)) {
        lines.push_back(text.substr(start, nl - start));
        start = nl + 1;
    }
    return lines;
}

}  // namespace

std::vector<std::string> accountProblems(const Account& account, const std::vector<FileNeed>& files) {
    int fds[2];
    if (::pipe(fds) != 0) {
        return {std::string("cannot check file access: pipe: ") + std::strerror(errno)};
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
        const int err = errno;
        ::close(fds[0]);
        ::close(fds[1]);
        return {std::string("cannot check file access: fork: ") + std::strerror(err)};
    }
    if (pid == 0) {
        ::close(fds[0]);
        writeAll(fds[1], accessProblemsAs(account, files));
        ::_exit(0);
    }
    ::close(fds[1]);
    const std::string report = readAll(fds[0]);
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return completeLines(report);
}

}  // namespace subproxy
