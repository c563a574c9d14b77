#include <sys/resource.h>

#include "os/fd_limits.h"

namespace subproxy {

std::uint64_t raiseFileLimit() {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) {
        return 0;
    }
    if (lim.rlim_cur < lim.rlim_max) {
        rlimit raised = lim;
        raised.rlim_cur = lim.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
            lim = raised;
        }
    }
    return lim.rlim_cur == RLIM_INFINITY ? UINT64_MAX : static_cast<std::uint64_t>(lim.rlim_cur);
}

std::uint64_t filesNeeded(const Config& config) {
    constexpr std::uint64_t kFixed = 64;  // stdio, syslog, resolver, state files, reserve, SASL
    return 2 * static_cast<std::uint64_t>(config.limits.maxSessions) + config.listeners.size() +
           (config.status.enabled ? 32 : 0) + static_cast<std::uint64_t>(config.auth.maxWorkers) + kFixed;
}

std::string fileLimitWarning(const Config& config, std::uint64_t limit) {
    const std::uint64_t need = filesNeeded(config);
    if (limit >= need) {
        return {};
    }
    return "limits.max_sessions = " + std::to_string(config.limits.maxSessions) + " needs about " +
           std::to_string(need) + " file descriptors (two per session), but the limit is " + std::to_string(limit) +
           ": raise it (systemd LimitNOFILE=, ulimit -n) or lower limits.max_sessions; past it new customers "
           "get 421 until sessions end";
}

}  // namespace subproxy
