// Password-guesser defence and per-address limits, the I/O half (issue 3 items 1 and 4):
// owns the BanList (ban_list.h), the per-address session counts and connection rates, the
// state file (written through writeFileAtomically, atomic_file.h) and the operator's control
// socket.
// Shared by every event loop (workers): each public call takes the guard's mutex for a short,
// I/O-free moment (a log line at most); the state file is serialised under it and written
// outside it, on the control loop, which also serves the control socket.
#pragma once
#include <event2/event.h>
#include <event2/listener.h>

#include <atomic>
#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "defence/ban_list.h"
#include "defence/shared_state_keys.h"
#include "ops/metrics.h"
#include "ops/config.h"
#include "io/event_handles.h"

struct bufferevent;

namespace subproxy {

class SharedState;

class Guard {
public:
    // Loads the state file (a missing file is an empty list; see BanList::load for what is
    // kept of one larger than guard.max_tracked) and opens the control socket; throws
    // std::runtime_error when the socket cannot be bound.  Constructed before the listeners.
    Guard(event_base* base, const GuardConfig& config);
    ~Guard();  // writes the state file
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

    // Adds the bans, ban refusals and held replies counted so far (a scrape, any thread).
    void addCounts(Metrics& into) const;

    // SIGHUP.  state_file and control_socket changes wait for a restart (logged).
    void reconfigure(const GuardConfig& config);

    struct Admission {
        bool ok = true;
        bool close = false;  // close without a reply (ban_action "close")
        std::string reply;   // "421 4.7.0 ..." text after the code's host name
    };
    // At accept, before any work: bans, the per-address session limit, the connection rate.
    // Logs every refusal with the client address.  `who` is "[addr]:port".
    Admission admit(const IpAddress& ip, const std::string& who);
    // The session exists (counts toward guard.max_sessions_per_client) / has gone.
    void sessionOpened(std::uint64_t id, const IpAddress& ip);
    void sessionClosed(std::uint64_t id);

    // A failed AUTH (535): counts it, logs the ban when this one crossed the threshold, and
    // returns how long to hold the 535 (seconds; 0 for trusted networks).
    double authFailed(const IpAddress& ip, const std::string& who, const std::string& user);
    void authSucceeded(const std::string& user);
    // The spambot trap's "ban" action (session_trap.cpp): bans the address for
    // guard.ban_time in the same list, logged like an AUTH ban.  Trusted networks are exempt.
    void trapBan(const IpAddress& ip, const std::string& who, const std::string& why);

    // Bans in force now (the status endpoint's subproxy_active_bans).
    std::size_t activeBans() const;

    void flush();  // writes the state file now if anything changed (control loop)

    // Several gateways (issue 11; guard_shared.cpp).  The fleet's state, nullptr with
    // state.backend "local"; set once, before any worker runs.  The calls above hand it every
    // failure, success and ban, after deciding locally.
    void setShared(SharedState* shared) { shared_ = shared; }
    // From the fleet (control loop): a ban (`here`: this gateway's failure made it, counted and
    // logged as its own), a lift, the fleet's failure counts, and the whole list after a
    // (re)connection: bans missing from it are lifted here, but those in `keep` (made here
    // since the list was asked for).
    void adoptBan(const std::string& key, std::int64_t until, unsigned failures, bool here);
    void adoptLift(const std::string& key);
    void adoptFailures(const std::string& key, unsigned addressFailures, const std::string& user,
                       unsigned userFailures);
    void reconcileBans(const std::vector<SharedBan>& fleet, const std::set<std::string>& keep);
    // The operator's lift on this gateway only: the key lifted, or "" when it was not banned here.
    std::string liftLocal(const std::string& addressOrKey);

    // The operator's commands, as served on the control socket and by `subproxy -b/-u`.
    // "list", "lift ADDRESS", "stats".  Returns the reply text (lines ending in \n).
    std::string command(const std::string& line);
    // More commands on the same socket (the accounts store's "accounts ..."): asked first; an
    // empty optional leaves the line to the guard.  Set before the control socket serves.
    using CommandExtension = std::function<std::optional<std::string>(const std::string& line)>;
    void setCommandExtension(CommandExtension extension) { extension_ = std::move(extension); }

private:
    // After a ban: on disk within a second, one write (and one fsync) for a whole burst of bans,
    // so a distributed attack cannot turn every ban into a disk stall.  Any thread: the control
    // loop's one-second timer does the write.
    void flushSoon() { flushWanted_.store(true, std::memory_order_relaxed); }
    void countBan() { ++counts_.bans; }
    Metrics counts_;  // bans, banRefusals, authDelayedReplies only
    bool trusted(const IpAddress& addr) const { return config_.trusted.contains(addr); }
    void scheduleFlush();
    void openControlSocket();
    static void flushCb(evutil_socket_t, short, void* self);
    static void flushSoonCb(evutil_socket_t, short, void* self);
    static void controlAcceptCb(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* self);
    static void controlReadCb(bufferevent* bev, void* self);
    static void controlWriteCb(bufferevent* bev, void* self);
    static void controlEventCb(bufferevent* bev, short what, void* self);
    void controlDone(bufferevent* bev);
    void controlAnswer(bufferevent* bev, const std::string& answer);

    event_base* base_;
    mutable std::mutex mutex_;  // everything below but the control socket (control loop only)
    std::atomic<bool> flushWanted_{false};
    GuardConfig config_;
    std::string stateFile_;      // fixed at start
    std::string controlPath_;    // fixed at start
    BanList bans_;
    WindowCounter rates_;        // connections per address (not persisted: short windows)
    std::unordered_map<std::string, unsigned> sessionsPerKey_;
    std::unordered_map<std::uint64_t, std::string> sessionKeys_;
    EventPtr flushTimer_;
    EventPtr flushSoonTimer_;
    bool saveFailing_ = false;   // the last state file write failed (logged once)
    evconnlistener* control_ = nullptr;
    // Open control connections and a number each: an answer that comes later (from Redis)
    // goes only to the connection that asked, if it is still there.
    std::unordered_map<bufferevent*, std::uint64_t> controlConns_;
    std::uint64_t nextControlId_ = 0;
    SharedState* shared_ = nullptr;
    CommandExtension extension_;
};

// `subproxy -b` / `-u ADDRESS`: asks the running daemon over guard.control_socket; when no
// daemon answers, reads (and for a lift, rewrites) guard.state_file itself.  Prints the
// answer; returns the exit code.
int guardCommandLine(const std::string& configFile, const std::string& command);

// For the command line: `configFile` read into `config`, or false with the problem printed.
bool loadConfigOrSay(const std::string& configFile, Config& config);

// One command line to the running daemon over guard.control_socket: true with its answer, or
// false with *connectError (0: no socket configured).  And whether a daemon runs (its pid file
// or a listener on the socket), for callers that would otherwise fall back to the state file.
bool askGuardDaemon(const GuardConfig& guard, const std::string& command, std::string& answer, int& connectError);
bool guardDaemonRunning(const Config& config);

}  // namespace subproxy
