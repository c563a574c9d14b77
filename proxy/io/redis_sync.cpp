// See redis_sync.h.
#include "io/redis_sync.h"

#include <hiredis/hiredis.h>

#include "io/redis_client.h"  // copyRedisReply
#include "wire/text_util.h"

namespace subproxy {

namespace {

timeval toTimeval(int ms) { return timeval{ms / 1000, static_cast<suseconds_t>((ms % 1000) * 1000)}; }

}  // namespace

RedisSync::RedisSync(const StateConfig& config) : where_("Redis at " + config.address) {
    const timeval connect = toTimeval(config.connectTimeoutMs);
    c_ = config.socket.empty() ? redisConnectWithTimeout(config.host.c_str(), config.port, connect)
                               : redisConnectUnixWithTimeout(config.socket.c_str(), connect);
    if (!c_ || c_->err) {
        const std::string why = c_ ? c_->errstr : "out of memory";
        throw std::runtime_error("cannot connect to " + where_ + ": " + why);
    }
    redisSetTimeout(c_, toTimeval(config.commandTimeoutMs));
    if (!config.password.empty()) {
        const auto reply = config.username.empty() ? command({"AUTH", config.password})
                                                   : command({"AUTH", config.username, config.password});
        if (reply.isError()) {
            throw RedisRefused(where_ + " refused the login (state.username/state.password): " +
                                     printable(reply.str));
        }
    }
    if (config.database != 0) {
        const auto reply = command({"SELECT", std::to_string(config.database)});
        if (reply.isError()) {
            throw RedisRefused(where_ + " refused state.database " + std::to_string(config.database) + ": " +
                                     printable(reply.str));
        }
    }
}

RedisSync::~RedisSync() {
    if (c_) {
        redisFree(c_);
    }
}

RedisValue RedisSync::command(const std::vector<std::string>& argv) {
    return pipeline({argv}).front();
}

std::vector<RedisValue> RedisSync::pipeline(const std::vector<std::vector<std::string>>& commands) {
    for (const auto& argv : commands) {
        std::vector<const char*> args;
        std::vector<std::size_t> lens;
        for (const auto& a : argv) {
            args.push_back(a.data());
            lens.push_back(a.size());
        }
        redisAppendCommandArgv(c_, static_cast<int>(args.size()), args.data(), lens.data());
    }
    std::vector<RedisValue> replies;
    for (std::size_t i = 0; i < commands.size(); ++i) {
        void* reply = nullptr;
        if (redisGetReply(c_, &reply) != REDIS_OK || !reply) {
            throw std::runtime_error(where_ + ": " + (c_->errstr[0] ? c_->errstr : "no reply"));
        }
        replies.push_back(copyRedisReply(reply));
        freeReplyObject(reply);
    }
    return replies;
}

}  // namespace subproxy
