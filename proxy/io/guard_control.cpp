// The guard's control socket (one command line in, the answer out, then close) and
// `subproxy -b/-u`, which asks it, or reads the state file when no daemon runs.
#include <fcntl.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "io/guard.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "io/guard_state_file.h"
#include "io/shared_cli.h"
#include "io/shared_state.h"
#include "os/atomic_file.h"
#include "os/log.h"
#include "os/pidfile.h"
#include "wire/text_util.h"

namespace subproxy {

namespace {

constexpr std::size_t kMaxControlLine = 512;

bool fillSockaddr(const std::string& path, sockaddr_un& sun) {
    std::memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    if (path.size() >= sizeof sun.sun_path) {
        return false;
    }
    std::memcpy(sun.sun_path, path.data(), path.size());
    return true;
}

// Whether a socket is listening at `path`, from /proc/net/unix: no permission on the socket
// file is needed, so a user that connect(2) refuses (EACCES) still learns that a daemon runs.
bool someoneListensOn(const std::string& path) {
    constexpr unsigned long kAcceptCon = 0x10000;  // __SO_ACCEPTCON: listen(2) was called
    std::ifstream in("/proc/net/unix");
    std::string line;
    std::getline(in, line);  // "Num RefCount Protocol Flags Type St Inode Path"
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string num, refs, protocol, flags, type, state, inode;
        fields >> num >> refs >> protocol >> flags >> type >> state >> inode;
        std::string socketPath;
        std::getline(fields >> std::ws, socketPath);
        if (socketPath == path && (std::strtoul(flags.c_str(), nullptr, 16) & kAcceptCon) != 0) {
            return true;
        }
    }
    return false;
}

// Why the state file must not be used instead of the control socket, "" when no daemon runs:
// a running daemon keeps its bans in memory and rewrites the file, so a lift written there
// would be undone (after being reported as done).  `connectError`: errno of the failed
// connect(2) to guard.control_socket, 0 when none is configured; `lift`: the command would
// change the file (else it only reads it).
std::string runningDaemonProblem(const Config& config, int connectError, bool lift) {
    const GuardConfig& g = config.guard;
    const pid_t pid = config.daemon.pidFile.empty() ? 0 : runningSubproxyPid(config.daemon.pidFile);
    const bool listening = !g.controlSocket.empty() && someoneListensOn(g.controlSocket);
    if (pid == 0 && !listening) {
        return {};
    }
    const std::string running =
        "subproxy is running" + (pid ? " (pid " + std::to_string(pid) + " in " + config.daemon.pidFile + ")" : "");
    const std::string file = g.stateFile.empty() ? std::string("guard.state_file") : "guard.state_file " + g.stateFile;
    if (g.controlSocket.empty()) {
        return running + " but guard.control_socket is not set, so it cannot be asked; " +
               (lift ? "a lift written to " + file + " would be overwritten by it"
                     : file + " may lack its latest bans") +
               ". Set guard.control_socket (it takes effect at the next restart), or stop subproxy first";
    }
    std::string out = running + " but its control socket " + g.controlSocket + " cannot be reached: " +
                      std::strerror(connectError);
    struct stat st {};
    if ((connectError == EACCES || connectError == EPERM) && ::stat(g.controlSocket.c_str(), &st) == 0) {
        const passwd* owner = ::getpwuid(st.st_uid);
        out += "; run this as " + (owner ? std::string(owner->pw_name) : "uid " + std::to_string(st.st_uid)) +
               ", who owns the socket";
    }
    return out + (lift ? ". guard.state_file was not changed: the daemon would overwrite it" : "");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Control socket: one command line in, the answer out, then close.

std::string Guard::command(const std::string& line) {
    if (extension_) {
        if (auto answer = extension_(line)) {
            return *answer;
        }
    }
    const std::int64_t now = wallNow();
    std::istringstream in(line);
    std::string verb, arg, extra;
    in >> verb >> arg >> extra;
    std::unique_lock<std::mutex> lock(mutex_);
    if (verb == "list" && arg.empty()) {
        return listBans(bans_, now);
    }
    if (verb == "lift" && !arg.empty() && extra.empty()) {
        const std::string key = bans_.lift(arg, now);
        if (key.empty()) {
            return "error: " + printable(arg) + " is not banned; nothing changed\n";
        }
        lock.unlock();  // flush() takes it again
        logInfo("guard: ban on " + key + " lifted by the operator");
        flush();
        return "lifted " + key + "\n";
    }
    if (verb == "stats" && arg.empty()) {
        return "bans=" + std::to_string(bans_.bans(now).size()) +
               " tracked_addresses=" + std::to_string(bans_.trackedAddresses()) +
               " tracked_users=" + std::to_string(bans_.trackedUsers()) +
               " clients_with_sessions=" + std::to_string(sessionsPerKey_.size()) + "\n";
    }
    return "error: commands are: list | lift ADDRESS | stats\n";
}

void Guard::openControlSocket() {
    if (controlPath_.empty()) {
        return;
    }
    sockaddr_un sun;
    if (!fillSockaddr(controlPath_, sun)) {
        throw std::runtime_error("guard.control_socket: path too long: " + controlPath_);
    }
    // A socket file left by a daemon that died is in the way; a live daemon answers connect().
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0) {
        if (::connect(probe, reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0) {
            ::close(probe);
            throw std::runtime_error("guard.control_socket: " + controlPath_ + " is in use by another subproxy");
        }
        ::close(probe);
    }
    ::unlink(controlPath_.c_str());
    const mode_t old = ::umask(0077);  // the operator (root) and the daemon's user only
    control_ = evconnlistener_new_bind(base_, &Guard::controlAcceptCb, this,
                                       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 8,
                                       reinterpret_cast<sockaddr*>(&sun), sizeof sun);
    ::umask(old);
    if (!control_) {
        throw std::runtime_error("guard.control_socket: cannot listen on " + controlPath_ + ": " +
                                 std::strerror(errno));
    }
}

void Guard::controlAcceptCb(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* self) {
    auto* guard = static_cast<Guard*>(self);
    bufferevent* bev = bufferevent_socket_new(guard->base_, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        ::close(fd);
        return;
    }
    guard->controlConns_.emplace(bev, ++guard->nextControlId_);
    bufferevent_setcb(bev, &Guard::controlReadCb, nullptr, &Guard::controlEventCb, guard);
    const timeval timeout{5, 0};
    bufferevent_set_timeouts(bev, &timeout, &timeout);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

void Guard::controlReadCb(bufferevent* bev, void* self) {
    auto* guard = static_cast<Guard*>(self);
    evbuffer* in = bufferevent_get_input(bev);
    std::size_t len = 0;
    char* line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
    if (!line) {
        if (evbuffer_get_length(in) > kMaxControlLine) {
            guard->controlDone(bev);
        }
        return;
    }
    const std::string command(line, len);
    std::free(line);
    bufferevent_disable(bev, EV_READ);
    if (guard->shared_ && SharedState::handles(command)) {
        // The fleet's list, or a lift on every gateway: answered when Redis replies (at most
        // state.command_timeout), to this connection if it is still open.
        guard->shared_->command(command, [guard, bev, id = guard->controlConns_.at(bev)](const std::string& answer) {
            const auto it = guard->controlConns_.find(bev);
            if (it != guard->controlConns_.end() && it->second == id) {
                guard->controlAnswer(bev, answer);
            }
        });
        return;
    }
    guard->controlAnswer(bev, guard->command(command));
}

void Guard::controlAnswer(bufferevent* bev, const std::string& answer) {
    if (answer.empty()) {  // "list" with no bans: nothing will ever trigger the write callback
        controlDone(bev);
        return;
    }
    bufferevent_setcb(bev, nullptr, &Guard::controlWriteCb, &Guard::controlEventCb, this);
    bufferevent_write(bev, answer.data(), answer.size());
}

void Guard::controlWriteCb(bufferevent* bev, void* self) { static_cast<Guard*>(self)->controlDone(bev); }

void Guard::controlEventCb(bufferevent* bev, short, void* self) { static_cast<Guard*>(self)->controlDone(bev); }

void Guard::controlDone(bufferevent* bev) {
    controlConns_.erase(bev);
    bufferevent_free(bev);
}

// ---------------------------------------------------------------------------------------------
// Command line (a separate process: blocking I/O is fine here)

bool askGuardDaemon(const GuardConfig& g, const std::string& command, std::string& answer, int& connectError) {
    sockaddr_un sun;
    connectError = 0;
    if (g.controlSocket.empty() || !fillSockaddr(g.controlSocket, sun)) {
        return false;
    }
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0) {
        const std::string line = command + "\n";
        bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
        char buf[4096];
        ssize_t n;
        while (ok && (n = ::read(fd, buf, sizeof buf)) > 0) {
            answer.append(buf, static_cast<std::size_t>(n));
        }
        ::close(fd);
        return true;
    }
    connectError = errno;
    if (fd >= 0) {
        ::close(fd);
    }
    return false;
}

bool guardDaemonRunning(const Config& config) {
    return (!config.daemon.pidFile.empty() && runningSubproxyPid(config.daemon.pidFile) != 0) ||
           (!config.guard.controlSocket.empty() && someoneListensOn(config.guard.controlSocket));
}

bool loadConfigOrSay(const std::string& configFile, Config& config) {
    try {
        config = loadConfig(configFile);
        return true;
    } catch (const std::exception& e) {
        std::cerr << e.what() << "\n";
        return false;
    }
}

int guardCommandLine(const std::string& configFile, const std::string& command) {
    Config config;
    if (!loadConfigOrSay(configFile, config)) {
        return 1;
    }
    const GuardConfig& g = config.guard;
    int connectError = 0;
    if (std::string answer; askGuardDaemon(g, command, answer, connectError)) {
        std::cout << answer;
        return answer.rfind("error:", 0) == 0 ? 1 : 0;
    }
    if (config.state.backend == StateBackend::Redis) {
        // Straight to the fleet's list: a running daemon hears a lift on the events channel,
        // so there is no file to race with.
        return sharedGuardCommandLine(config, command);
    }
    if (const std::string problem = runningDaemonProblem(config, connectError, command != "list"); !problem.empty()) {
        std::cerr << "subproxy: " << (command == "list" ? std::string("cannot list the bans")
                                                         : "ban on " + printable(command.substr(5)) + " not lifted")
                  << ": " << problem << "\n";
        return 1;
    }
    // No daemon: work on the state file directly.
    if (g.stateFile.empty()) {
        std::cerr << configFile << ": neither guard.control_socket answers nor is guard.state_file set\n";
        return 1;
    }
    std::string error;
    BanList bans(g.policy);
    const std::int64_t now = wallNow();
    BanList::LoadResult loaded;
    if (!loadGuardStateFile(g.stateFile, bans, now, loaded, error)) {
        std::cerr << g.stateFile << ": " << error << "\n";
        return 1;
    }
    if (command == "list") {
        std::cout << listBans(bans, now);
        return 0;
    }
    if (command.rfind("lift ", 0) == 0) {
        const std::string key = bans.lift(command.substr(5), now);
        if (key.empty()) {
            std::cerr << "error: " << printable(command.substr(5)) << " is not banned; nothing changed\n";
            return 1;
        }
        if (!writeFileAtomically(g.stateFile, bans.serialise(now), kGuardStateFileMode, error)) {
            std::cerr << error << "\n";
            return 1;
        }
        std::cout << "lifted " << key << " (in " << g.stateFile << "; no daemon was listening on the control socket)\n";
        return 0;
    }
    std::cerr << "error: unknown command\n";
    return 1;
}

}  // namespace subproxy
