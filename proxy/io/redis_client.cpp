// See redis_client.h.
#include "io/redis_client.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>

#include "os/log.h"
#include "wire/text_util.h"

namespace subproxy {

RedisValue copyRedisReply(const void* reply) {
    const auto* r = static_cast<const redisReply*>(reply);
    RedisValue v;
    switch (r->type) {
    case REDIS_REPLY_INTEGER:
        v.type = RedisValue::Type::Integer;
        v.integer = r->integer;
        break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        v.type = r->type == REDIS_REPLY_STRING   ? RedisValue::Type::String
                 : r->type == REDIS_REPLY_STATUS ? RedisValue::Type::Status
                                                 : RedisValue::Type::Error;
        v.str.assign(r->str, r->len);
        break;
    case REDIS_REPLY_ARRAY:
        v.type = RedisValue::Type::Array;
        v.elements.reserve(r->elements);
        for (std::size_t i = 0; i < r->elements; ++i) {
            v.elements.push_back(copyRedisReply(r->element[i]));
        }
        break;
    default:
        break;  // nil
    }
    return v;
}

namespace {

std::chrono::milliseconds ms(int n) { return std::chrono::milliseconds(n); }

// TCP keepalive: the first probe after kKeepAliveSeconds idle, then every third of that, three
// unanswered probes end the connection.  A failure only costs the early warning: not logged.
void probeWhenIdle(int fd) {
    const int on = 1;
    const int idle = RedisClient::kKeepAliveSeconds;
    const int interval = std::max(1, idle / 3);
    const int count = 3;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

}  // namespace

RedisClient::RedisClient(event_base* base, const StateConfig& config, std::string name, Hooks hooks,
                         std::string channel)
    : base_(base),
      config_(config),
      name_(std::move(name)),
      hooks_(std::move(hooks)),
      channel_(std::move(channel)),
      queue_(static_cast<std::size_t>(config.replayLimit)) {
    timeout_.reset(evtimer_new(base_, &RedisClient::timerCb, this));
    retry_.reset(evtimer_new(base_, &RedisClient::retryCb, this));
}

RedisClient::~RedisClient() {
    if (ac_) {
        redisAsyncContext* ac = ac_;
        ac_ = nullptr;
        ac->data = nullptr;  // the callbacks hiredis runs while freeing find no client
        redisAsyncFree(ac);
    }
    // The callbacks in flight are not run: their owner (SharedState) is going too.
}

std::string RedisClient::where() const {
    return "Redis " + (name_.empty() ? std::string() : name_ + " ") + "at " + config_.address;
}

void RedisClient::start() { connect(); }

void RedisClient::connect() {
    state_ = State::Connecting;
    ac_ = config_.socket.empty() ? redisAsyncConnect(config_.host.c_str(), config_.port)
                                 : redisAsyncConnectUnix(config_.socket.c_str());
    if (!ac_ || ac_->err) {
        const std::string why = ac_ ? ac_->errstr : "out of memory";
        if (ac_) {
            redisAsyncFree(ac_);
            ac_ = nullptr;
        }
        lost(why);
        return;
    }
    ac_->data = this;
    redisLibeventAttach(ac_, base_);
    redisAsyncSetConnectCallback(ac_, &RedisClient::connectCb);
    redisAsyncSetDisconnectCallback(ac_, &RedisClient::disconnectCb);
    armTimeout();
}

void RedisClient::connectCb(const redisAsyncContext* ac, int status) {
    if (auto* self = static_cast<RedisClient*>(ac->data)) {
        self->onConnected(status);
    }
}

void RedisClient::onConnected(int status) {
    if (status != REDIS_OK) {
        const std::string why = ac_ && ac_->errstr[0] ? ac_->errstr : "connection failed";
        ac_ = nullptr;  // hiredis frees a context whose connection failed
        lost(why);
        return;
    }
    if (config_.socket.empty()) {
        // A Redis host that dies or reboots without a word leaves this connection half-open:
        // the command timeout notices it on the main connection at its next command, but the
        // subscriber never writes and would wait for messages that no longer come, for ever.
        // TCP keepalive probes it when idle: a rebooted host answers the first probe with a
        // reset, a vanished one leaves three probes unanswered.
        probeWhenIdle(ac_->c.fd);
    }
    login();
}

void RedisClient::login() {
    state_ = State::LoggingIn;
    refusalLogged_ = false;
    if (!config_.password.empty()) {
        Command auth;
        auth.argv = config_.username.empty() ? std::vector<std::string>{"AUTH", config_.password}
                                             : std::vector<std::string>{"AUTH", config_.username, config_.password};
        write(std::move(auth), true);
    }
    if (config_.database != 0 && channel_.empty()) {  // channels are not per database
        write({{"SELECT", std::to_string(config_.database)}, {}, false}, true);
    }
    // The last login step says we are up: PING, or the subscription's confirmation.
    Command last;
    last.argv = channel_.empty() ? std::vector<std::string>{"PING"} : std::vector<std::string>{"SUBSCRIBE", channel_};
    last.done = [this](const Reply& reply) {
        if (!reply || reply->isError()) {
            return;  // onReply has dropped the connection
        }
        const bool wasDown = everUp_;
        state_ = State::Up;
        if (outageLogged_) {
            const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                std::chrono::steady_clock::now() - downSince_).count();
            logInfo("state: " + where() + " is back after " + std::to_string(seconds) + "s" +
                    (channel_.empty() ? "; replaying " + std::to_string(queue_.size()) + " updates (" +
                                            std::to_string(queue_.dropped()) + " dropped since start)"
                                      : std::string()));
        } else if (!wasDown) {
            logInfo("state: connected to " + where());
        }
        everUp_ = true;
        outageLogged_ = false;
        while (state_ == State::Up && !queue_.empty()) {
            write(queue_.pop(), false);
        }
        if (hooks_.up) {
            hooks_.up();
        }
    };
    write(std::move(last), true);
}

void RedisClient::send(Command command) {
    if (state_ == State::Up && channel_.empty()) {
        write(std::move(command), false);
        return;
    }
    keep(std::move(command));
}

void RedisClient::keep(Command command) {
    // The caller learns at once that there is no answer now; the update itself waits.
    Callback done = std::move(command.done);
    command.done = nullptr;
    if (command.replay && channel_.empty()) {
        queue_.push(std::move(command));
    }
    if (done) {
        done(std::nullopt);
    }
}

void RedisClient::write(Command command, bool login) {
    if (!ac_) {  // a login step failed just before: the connection is gone
        keep(std::move(command));
        return;
    }
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : command.argv) {
        argv.push_back(a.data());
        lens.push_back(a.size());
    }
    const bool subscribe = login && !channel_.empty() && command.argv.front() == "SUBSCRIBE";
    inFlight_.push_back({std::move(command), std::chrono::steady_clock::now() + ms(config_.commandTimeoutMs), login});
    // SUBSCRIBE's callback is kept by hiredis for every message; the others answer once.
    const int rc = redisAsyncCommandArgv(ac_, subscribe ? &RedisClient::messageCb : &RedisClient::replyCb, this,
                                         static_cast<int>(argv.size()), argv.data(), lens.data());
    if (rc != REDIS_OK) {
        drop("cannot send a command");
        return;
    }
    armTimeout();
}

void RedisClient::replyCb(redisAsyncContext* ac, void* reply, void*) {
    if (auto* self = static_cast<RedisClient*>(ac->data)) {
        self->onReply(reply);
    }
}

void RedisClient::onReply(void* r) {
    if (inFlight_.empty()) {
        return;
    }
    InFlight f = std::move(inFlight_.front());
    inFlight_.pop_front();
    if (!r) {  // the connection is going: lost() requeues it
        orphans_.push_back(std::move(f.command));
        return;
    }
    RedisValue value = copyRedisReply(r);
    if (value.isError()) {
        ++errors_;
        // Once per connection: a missing ACL permission would otherwise log every update.
        if (!refusalLogged_ || f.login) {
            logWarning("state: " + where() + " refused " + f.command.argv.front() + ": " + printable(value.str) +
                       (f.login ? "" : " (further refusals are counted, not logged, until it reconnects)"));
        }
        refusalLogged_ = refusalLogged_ || !f.login;
    }
    if (f.command.done) {
        f.command.done(value);
    }
    if (f.login && value.isError()) {
        drop("login refused");
        return;
    }
    armTimeout();
}

void RedisClient::messageCb(redisAsyncContext* ac, void* reply, void*) {
    if (auto* self = static_cast<RedisClient*>(ac->data)) {
        self->onMessage(reply);
    }
}

void RedisClient::onMessage(void* r) {
    if (!r) {
        return;
    }
    const RedisValue v = copyRedisReply(r);
    // ["subscribe", channel, n] confirms (the login's last step); ["message", channel, text].
    if (v.type == RedisValue::Type::Array && v.elements.size() == 3 && v.elements[0].str == "subscribe") {
        if (!inFlight_.empty()) {
            InFlight f = std::move(inFlight_.front());
            inFlight_.pop_front();
            if (f.command.done) {
                f.command.done(v);
            }
        }
        armTimeout();
    } else if (v.type == RedisValue::Type::Array && v.elements.size() == 3 && v.elements[0].str == "message" &&
               hooks_.message) {
        hooks_.message(v.elements[2].str);
    }
}

void RedisClient::disconnectCb(const redisAsyncContext* ac, int status) {
    if (auto* self = static_cast<RedisClient*>(ac->data)) {
        const std::string why = status == REDIS_OK ? "connection closed" : (ac->errstr[0] ? ac->errstr : "connection lost");
        self->ac_ = nullptr;  // hiredis frees it after this callback
        self->lost(why);
    }
}

void RedisClient::drop(const std::string& why) {
    if (ac_) {
        redisAsyncContext* ac = ac_;
        ac_ = nullptr;
        ac->data = nullptr;  // no disconnectCb: lost() below does its work
        // Runs every pending callback with no reply (inside, or after the current callback);
        // their commands are requeued below from inFlight_ directly.
        redisAsyncFree(ac);
    }
    lost(why);
}

void RedisClient::lost(const std::string& why) {
    ++errors_;
    state_ = State::Waiting;
    evtimer_del(timeout_.get());
    // In flight (oldest first): what the context's free has not handed back yet, after what it
    // has.  Requeued oldest last, so that it ends up first; the others are answered "no reply".
    for (auto& f : inFlight_) {
        orphans_.push_back(std::move(f.command));
    }
    inFlight_.clear();
    std::vector<Command> orphans = std::move(orphans_);
    orphans_.clear();
    std::vector<Callback> unanswered;
    for (auto it = orphans.rbegin(); it != orphans.rend(); ++it) {
        if (it->done) {
            unanswered.push_back(std::move(it->done));
            it->done = nullptr;
        }
        if (it->replay && channel_.empty()) {
            queue_.pushOldest(std::move(*it));
        }
    }
    for (auto it = unanswered.rbegin(); it != unanswered.rend(); ++it) {
        (*it)(std::nullopt);  // oldest first, as they were sent
    }
    if (!outageLogged_) {
        outageLogged_ = true;
        downSince_ = std::chrono::steady_clock::now();
        logWarning("state: " + where() + " unreachable: " + printable(why) + "; sessions go on with this gateway's " +
                   "own state" + (channel_.empty() ? ", updates are kept (up to " +
                                                         std::to_string(config_.replayLimit) + ") for when it is back"
                                                   : ", bans made elsewhere arrive when it is back"));
    }
    const timeval again{config_.retryInterval, 0};
    evtimer_add(retry_.get(), &again);
}

void RedisClient::armTimeout() {
    std::chrono::steady_clock::time_point deadline;
    if (state_ == State::Connecting) {
        deadline = std::chrono::steady_clock::now() + ms(config_.connectTimeoutMs);
    } else if (!inFlight_.empty()) {
        deadline = inFlight_.front().deadline;
    } else {
        evtimer_del(timeout_.get());
        return;
    }
    const auto left = std::max<long long>(
        0, std::chrono::duration_cast<std::chrono::microseconds>(deadline - std::chrono::steady_clock::now()).count());
    const timeval tv{static_cast<time_t>(left / 1000000), static_cast<suseconds_t>(left % 1000000)};
    evtimer_add(timeout_.get(), &tv);
}

void RedisClient::timerCb(evutil_socket_t, short, void* self) {
    auto* client = static_cast<RedisClient*>(self);
    if (client->state_ == State::Connecting) {
        client->drop("no connection within " + std::to_string(client->config_.connectTimeoutMs) + " ms");
    } else if (!client->inFlight_.empty() && client->inFlight_.front().deadline <= std::chrono::steady_clock::now()) {
        client->drop("no reply within " + std::to_string(client->config_.commandTimeoutMs) + " ms");
    } else {
        client->armTimeout();
    }
}

void RedisClient::retryCb(evutil_socket_t, short, void* self) { static_cast<RedisClient*>(self)->connect(); }

}  // namespace subproxy
