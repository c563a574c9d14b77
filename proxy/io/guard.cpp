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
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

#include "os/atomic_file.h"
#include "os/log.h"
#include "os/pidfile.h"
#include "wire/text_util.h"

namespace subproxy {

namespace {

constexpr std::size_t kMaxControlLine = 512;
constexpr mode_t kStateFileMode = 0600;  // bans and the user names that failed: private

std::int64_t wallNow() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::string utc(std::int64_t t) { return formatUtc(t, "%Y-%m-%dT%H:%M:%SZ"); }

std::string seconds(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", s);
    return buf;
}

// Reads the state file into `bans` a chunk at a time: memory stays at one chunk however big
// the file, and no line is copied.  A missing file is an empty list.
bool loadStateFile(const std::string& path, BanList& bans, std::int64_t now, BanList::LoadResult& result,
                   std::string& error) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return true;  // nothing saved yet
        }
        error = std::strerror(errno);
        return false;
    }
    constexpr std::size_t kChunk = 1 << 20;
    std::string pending;  // a chunk plus the line cut at its end
    std::vector<char> buf(kChunk);
    for (;;) {
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error = std::strerror(errno);
            ::close(fd);
            return false;
        }
        if (n == 0) {
            break;
        }
        pending.append(buf.data(), static_cast<std::size_t>(n));
        const std::size_t lastNewline = pending.rfind('\n');
        if (lastNewline != std::string::npos) {
            result += bans.load(std::string_view(pending).substr(0, lastNewline + 1), now);
            pending.erase(0, lastNewline + 1);
        }
    }
    ::close(fd);
    result += bans.load(pending, now);  // a last line without a newline
    return true;
}

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

std::string listBans(const BanList& bans, std::int64_t now) {
    std::string out;
    for (const auto& b : bans.bans(now)) {
        out += b.key + " until=" + utc(b.until) + " left=" + std::to_string(b.until - now) +
               "s failures=" + std::to_string(b.failures) + "\n";
    }
    return out;
}

}  // namespace

Guard::Guard(event_base* base, const GuardConfig& config)
    : base_(base),
      config_(config),
      stateFile_(config.stateFile),
      controlPath_(config.controlSocket),
      bans_(config.policy),
      rates_(config.policy.maxTracked) {
    flushTimer_.reset(evtimer_new(base_, &Guard::flushCb, this));
    flushSoonTimer_.reset(evtimer_new(base_, &Guard::flushSoonCb, this));
    if (!stateFile_.empty()) {
        // Before the listeners exist (Server's constructor): no customer waits on a bound
        // socket meanwhile.  Announced, so a slow start on a huge file is explained.
        struct stat st {};
        const bool found = ::stat(stateFile_.c_str(), &st) == 0;
        const bool exists = found || errno != ENOENT;  // unreadable: say so below
        if (found) {
            logInfo("guard: reading state file " + stateFile_ + " (" + std::to_string(st.st_size) + " bytes)");
        }
        std::string error;
        BanList::LoadResult result;
        if (!exists) {
            // nothing saved yet
        } else if (!loadStateFile(stateFile_, bans_, wallNow(), result, error)) {
            logWarning("guard: cannot read state file " + stateFile_ + ": " + error + "; starting with no bans");
        } else {
            logInfo("guard: loaded " + stateFile_ + ": " + std::to_string(bans_.banCount()) + " bans, " +
                    std::to_string(bans_.trackedAddresses()) + " addresses and " +
                    std::to_string(bans_.trackedUsers()) + " user names with recent AUTH failures" +
                    (result.unreadable ? "; " + std::to_string(result.unreadable) + " unreadable lines skipped"
                                       : std::string()) +
                    (result.dropped ? "; " + std::to_string(result.dropped) +
                                          " entries dropped (guard.max_tracked=" +
                                          std::to_string(config_.policy.maxTracked) +
                                          "): kept the bans ending last and the latest counters"
                                    : std::string()));
        }
    }
    openControlSocket();
    scheduleFlush();
}

Guard::~Guard() {
    flush();
    for (bufferevent* bev : controlConns_) {
        bufferevent_free(bev);
    }
    if (control_) {
        evconnlistener_free(control_);
        ::unlink(controlPath_.c_str());
    }
}

void Guard::reconfigure(const GuardConfig& config) {
    // state_file and control_socket stay as they were (Server::reload warns: restartOnlyChanges).
    config_ = config;
    bans_.setPolicy(config.policy);
    rates_.setCapacity(config.policy.maxTracked);
}

// ---------------------------------------------------------------------------------------------
// Connections

Guard::Admission Guard::admit(const std::string& address, const std::string& who) {
    Admission a;
    const auto ip = parseIpAddress(address);
    if (!ip || trusted(*ip)) {
        return a;
    }
    const std::int64_t now = wallNow();
    const std::string key = bans_.addressKey(*ip);
    if (const std::int64_t left = bans_.banRemaining(*ip, now); left > 0) {
        if (metrics_) {
            ++metrics_->banRefusals;
        }
        logWarning(who + ": ban: connection refused, " + key + " is banned for another " + std::to_string(left) + "s");
        a.ok = false;
        a.close = config_.banClose;
        a.reply = "Error: too many failed authentications from your address, try again later";
        return a;
    }
    if (config_.connectionRate > 0) {
        const unsigned n = rates_.add(key, now, config_.connectionRateWindow);
        if (n > static_cast<unsigned>(config_.connectionRate)) {
            logWarning(who + ": limit: connection rate " + std::to_string(n) + " in " +
                       std::to_string(config_.connectionRateWindow) + "s from " + key +
                       " (guard.connection_rate=" + std::to_string(config_.connectionRate) + "); connection refused");
            a.ok = false;
            a.reply = "Error: too many connections from your address, try again later";
            return a;
        }
    }
    if (config_.maxSessionsPerClient > 0) {
        auto it = sessionsPerKey_.find(key);
        const unsigned open = it == sessionsPerKey_.end() ? 0 : it->second;
        if (open >= static_cast<unsigned>(config_.maxSessionsPerClient)) {
            logWarning(who + ": limit: " + std::to_string(open) + " sessions open from " + key +
                       " (guard.max_sessions_per_client=" + std::to_string(config_.maxSessionsPerClient) +
                       "); connection refused");
            a.ok = false;
            a.reply = "Error: too many connections from your address, try again later";
            return a;
        }
    }
    return a;
}

void Guard::sessionOpened(std::uint64_t id, const std::string& address) {
    const auto ip = parseIpAddress(address);
    if (!ip || trusted(*ip)) {
        return;
    }
    const std::string key = bans_.addressKey(*ip);
    ++sessionsPerKey_[key];
    sessionKeys_.emplace(id, key);
}

void Guard::sessionClosed(std::uint64_t id) {
    auto it = sessionKeys_.find(id);
    if (it == sessionKeys_.end()) {
        return;
    }
    auto count = sessionsPerKey_.find(it->second);
    if (count != sessionsPerKey_.end() && --count->second == 0) {
        sessionsPerKey_.erase(count);  // bounded by the sessions open, not by history
    }
    sessionKeys_.erase(it);
}

// ---------------------------------------------------------------------------------------------
// AUTH

double Guard::authFailed(const std::string& address, const std::string& who, const std::string& user) {
    const auto ip = parseIpAddress(address);
    if (!ip || trusted(*ip)) {
        return 0;
    }
    const std::int64_t now = wallNow();
    const auto f = bans_.recordFailure(*ip, user, now);
    if (f.banned) {
        logWarning(who + ": ban: " + std::to_string(f.addressFailures) + " AUTH failures from " + f.key + " in " +
                   std::to_string(config_.policy.window) + "s; banned for " + std::to_string(config_.policy.banTime) +
                   "s");
        countBan();
        flushSoon();  // a ban must survive a crash
    }
    if (f.delay > 0) {
        if (metrics_) {
            ++metrics_->authDelayedReplies;
        }
        logInfo(who + ": auth penalty: reply delayed " + seconds(f.delay) + "s (" +
                std::to_string(f.addressFailures) + " failures from " + f.key + ", " +
                std::to_string(f.userFailures) + " for sasl_username=" + printable(user) + ")");
    }
    return f.delay;
}

void Guard::countBan() {
    if (metrics_) {
        ++metrics_->bans;
    }
}

void Guard::authSucceeded(const std::string& address, const std::string& user) {
    (void)address;
    bans_.recordSuccess(user);
}

void Guard::trapBan(const std::string& address, const std::string& who, const std::string& why) {
    const auto ip = parseIpAddress(address);
    if (!ip || trusted(*ip)) {
        return;
    }
    const std::int64_t now = wallNow();
    bans_.ban(*ip, now, config_.policy.banTime, 0);
    logWarning(who + ": ban: " + why + " from " + bans_.addressKey(*ip) + "; banned for " +
               std::to_string(config_.policy.banTime) + "s");
    countBan();
    flushSoon();  // a ban must survive a crash
}

// ---------------------------------------------------------------------------------------------
// State file

void Guard::scheduleFlush() {
    const timeval every{config_.stateInterval, 0};
    evtimer_add(flushTimer_.get(), &every);
}

void Guard::flushSoon() {
    if (!evtimer_pending(flushSoonTimer_.get(), nullptr)) {
        const timeval soon{1, 0};
        evtimer_add(flushSoonTimer_.get(), &soon);
    }
}

void Guard::flushSoonCb(evutil_socket_t, short, void* self) { static_cast<Guard*>(self)->flush(); }

void Guard::flushCb(evutil_socket_t, short, void* self) {
    auto* guard = static_cast<Guard*>(self);
    guard->bans_.prune(wallNow());
    guard->flush();
    guard->scheduleFlush();
}

void Guard::flush() {
    if (stateFile_.empty() || !bans_.dirty()) {
        return;
    }
    std::string error;
    if (!writeFileAtomically(stateFile_, bans_.serialise(wallNow()), kStateFileMode, error)) {
        if (!saveFailing_) {  // once per outage, not every state_interval
            logError("guard: state file not saved: " + error);
        }
        saveFailing_ = true;
        return;  // still dirty: the next flush tries again
    }
    if (saveFailing_) {
        logInfo("guard: state file saved again: " + stateFile_);
    }
    saveFailing_ = false;
    bans_.clearDirty();
}

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
    if (verb == "list" && arg.empty()) {
        return listBans(bans_, now);
    }
    if (verb == "lift" && !arg.empty() && extra.empty()) {
        const std::string key = bans_.lift(arg, now);
        if (key.empty()) {
            return "error: " + printable(arg) + " is not banned; nothing changed\n";
        }
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
    guard->controlConns_.insert(bev);
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
    const std::string answer = guard->command(command);
    if (answer.empty()) {  // "list" with no bans: nothing will ever trigger the write callback
        guard->controlDone(bev);
        return;
    }
    bufferevent_disable(bev, EV_READ);
    bufferevent_setcb(bev, nullptr, &Guard::controlWriteCb, &Guard::controlEventCb, guard);
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

int guardCommandLine(const std::string& configFile, const std::string& command) {
    Config config;
    try {
        config = loadConfig(configFile);
    } catch (const std::exception& e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
    const GuardConfig& g = config.guard;
    int connectError = 0;
    if (std::string answer; askGuardDaemon(g, command, answer, connectError)) {
        std::cout << answer;
        return answer.rfind("error:", 0) == 0 ? 1 : 0;
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
    if (!loadStateFile(g.stateFile, bans, now, loaded, error)) {
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
        if (!writeFileAtomically(g.stateFile, bans.serialise(now), kStateFileMode, error)) {
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
