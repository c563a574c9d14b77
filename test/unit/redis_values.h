// Redis replies built by hand, for the unit tests of the code that reads them (shared state,
// fleet accounts): what copyRedisReply() makes of hiredis' replies.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "defence/shared_state_keys.h"  // RedisValue

namespace subproxy::test {

inline RedisValue integer(long long n) {
    RedisValue v;
    v.type = RedisValue::Type::Integer;
    v.integer = n;
    return v;
}

inline RedisValue string(const std::string& s) {
    RedisValue v;
    v.type = RedisValue::Type::String;
    v.str = s;
    return v;
}

inline RedisValue array(std::vector<RedisValue> elements) {
    RedisValue v;
    v.type = RedisValue::Type::Array;
    v.elements = std::move(elements);
    return v;
}

}  // namespace subproxy::test
