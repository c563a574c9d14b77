// One connection to Redis on the control loop, through hiredis' libevent adapter: nothing here
// ever blocks the loop (issue 11).  hiredis 0.14 has no timeouts of its own, so they are ours:
// a connection not made within state.connect_timeout, or a command unanswered for
// state.command_timeout, ends the connection; it is made again every state.retry_interval.
// Meanwhile commands marked `replay` wait in a bounded ReplayQueue (oldest dropped, counted)
// and go out in order once the connection is back; the others are answered "no reply" at once,
// so that a caller never waits longer than the command timeout.  An outage is logged once when
// it begins and once when it ends.
//
// A client made with a channel is a subscriber: after logging in it only listens (SUBSCRIBE),
// handing every message to `message`; it takes no commands.
#pragma once
#include <event2/event.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "defence/shared_state_keys.h"  // RedisValue
#include "io/event_handles.h"
#include "ops/config.h"
#include "ops/replay_queue.h"

struct redisAsyncContext;

namespace subproxy {

// A hiredis redisReply (passed as void*: hiredis stays out of this header) copied out.
RedisValue copyRedisReply(const void* reply);

class RedisClient {
public:
    using Reply = std::optional<RedisValue>;  // nullopt: no answer (unreachable, timed out)
    using Callback = std::function<void(const Reply&)>;
    // `done` (may be empty) runs exactly once on the control loop: with the reply, or with
    // nullopt at once when Redis is unreachable, or when no reply came within
    // state.command_timeout.  A `replay` update is kept all the same (without its callback)
    // and sent when Redis is back.
    struct Command {
        std::vector<std::string> argv;
        Callback done;
        bool replay = false;
    };
    struct Hooks {
        std::function<void()> up;                          // (re)connected and logged in
        std::function<void(const std::string&)> message;   // subscriber: a message on the channel
    };

    // `name` goes into the log lines ("state: Redis subscription at ... unreachable").
    RedisClient(event_base* base, const StateConfig& config, std::string name, Hooks hooks,
                std::string channel = {});
    ~RedisClient();
    RedisClient(const RedisClient&) = delete;
    RedisClient& operator=(const RedisClient&) = delete;

    void start();  // the first connection attempt (the constructor only prepares)
    void send(Command command);

    bool up() const { return state_ == State::Up; }
    std::uint64_t errors() const { return errors_; }
    std::uint64_t dropped() const { return queue_.dropped(); }
    std::size_t queued() const { return queue_.size(); }

    // Idle seconds before the first keepalive probe of a TCP connection; the next ones follow
    // every third of it, three in all: a dead peer is noticed within about twice this, a
    // rebooted one (it answers with a reset) within this.
    static constexpr int kKeepAliveSeconds = 10;

private:
    enum class State { Waiting, Connecting, LoggingIn, Up };
    struct InFlight {
        Command command;
        std::chrono::steady_clock::time_point deadline;
        bool login = false;  // AUTH/SELECT/SUBSCRIBE of the login: a refusal ends the connection
    };

    void connect();
    void onConnected(int status);
    void login();
    void write(Command command, bool login);
    void keep(Command command);  // not sent now: answered "no reply", kept when it replays
    void onReply(void* reply);
    void onMessage(void* reply);
    // The connection is gone (or given up): requeue or fail what was in flight, log the outage
    // once, count it, and try again after retry_interval.
    void lost(const std::string& why);
    void drop(const std::string& why);  // ends the connection ourselves (timeout, refusal)
    void armTimeout();
    std::string where() const;

    static void connectCb(const redisAsyncContext* ac, int status);
    static void disconnectCb(const redisAsyncContext* ac, int status);
    static void replyCb(redisAsyncContext* ac, void* reply, void* self);
    static void messageCb(redisAsyncContext* ac, void* reply, void* self);
    static void timerCb(evutil_socket_t, short, void* self);
    static void retryCb(evutil_socket_t, short, void* self);

    event_base* base_;
    StateConfig config_;
    std::string name_;
    Hooks hooks_;
    std::string channel_;
    redisAsyncContext* ac_ = nullptr;
    State state_ = State::Waiting;
    std::deque<InFlight> inFlight_;       // sent, in order; replies come back in this order
    std::vector<Command> orphans_;        // in flight when the connection went: requeued by lost()
    ReplayQueue<Command> queue_;
    EventPtr timeout_;
    EventPtr retry_;
    std::uint64_t errors_ = 0;
    bool everUp_ = false;
    bool outageLogged_ = false;
    bool refusalLogged_ = false;  // an error reply was logged on this connection
    std::chrono::steady_clock::time_point downSince_;
};

}  // namespace subproxy
