// A blocking Redis connection for the command line (`subproxy -t`, `-b`/`-u` when no daemon
// runs, `-r`): a separate process with nothing else to do, so waiting is fine, but every wait
// is bounded by state.connect_timeout / state.command_timeout.
#pragma once
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "defence/shared_state_keys.h"
#include "ops/config.h"

struct redisContext;

namespace subproxy {

// Redis answered, but refused the login or a command: a configuration problem, not an outage.
struct RedisRefused : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class RedisSync {
public:
    // Connects and logs in (AUTH, SELECT); throws RedisRefused when the login is refused, else
    // std::runtime_error saying what failed.
    explicit RedisSync(const StateConfig& config);
    ~RedisSync();
    RedisSync(const RedisSync&) = delete;
    RedisSync& operator=(const RedisSync&) = delete;

    // One command; an error reply comes back as a RedisValue of type Error.  Throws on I/O
    // errors and timeouts.
    RedisValue command(const std::vector<std::string>& argv);
    // Several in one round trip; replies in order.
    std::vector<RedisValue> pipeline(const std::vector<std::vector<std::string>>& commands);

private:
    std::string where_;
    redisContext* c_ = nullptr;
};

}  // namespace subproxy
