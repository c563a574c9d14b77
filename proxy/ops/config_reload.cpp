// What SIGHUP cannot apply (see config.h, restartOnlyChanges, and the RELOAD table in
// subproxy.conf(5)).  Pure: compares two configurations.
#include "ops/config.h"

namespace subproxy {

std::vector<std::string> restartOnlyChanges(const Config& running, const Config& next) {
    std::vector<std::string> changed;
    const auto check = [&](bool same, const char* key) {
        if (!same) {
            changed.emplace_back(key);
        }
    };
    // Cyrus SASL is initialised once per process; the worker pool is made at start-up.
    check(running.auth.backend == next.auth.backend, "auth.backend");
    check(running.auth.saslService == next.auth.saslService, "auth.sasl_service");
    check(running.auth.saslConfigDir == next.auth.saslConfigDir, "auth.sasl_config_dir");
    check(running.auth.workers == next.auth.workers, "auth.workers");
    check(running.auth.maxWorkers == next.auth.maxWorkers, "auth.max_workers");
    // openlog() once; the process identity, its pid file and its sockets are set up before
    // the privileges are dropped, and could not be made again by the unprivileged user.
    check(running.logFacility == next.logFacility, "log_facility");
    // Opened before the privileges are dropped (SIGHUP and SIGUSR1 reopen the same path).
    check(running.logFile == next.logFile, "log_file");
    check(running.workers == next.workers, "workers");
    check(running.daemon.pidFile == next.daemon.pidFile, "pid_file");
    check(running.daemon.user == next.daemon.user, "user");
    check(running.daemon.group == next.daemon.group, "group");
    check(running.status.enabled == next.status.enabled, "status");
    if (running.status.enabled && next.status.enabled) {
        check(running.status.address == next.status.address, "status.address");
        check(running.status.port == next.status.port, "status.port");
        check(running.status.socket == next.status.socket, "status.socket");
        check(running.status.token == next.status.token, "status.token");
        check(running.status.maxConnections == next.status.maxConnections, "status.max_connections");
    }
    check(running.guard.stateFile == next.guard.stateFile, "guard.state_file");
    check(running.guard.controlSocket == next.guard.controlSocket, "guard.control_socket");
    check(running.migration.stateFile == next.migration.stateFile, "migration.state_file");
    check(running.migration.flushInterval == next.migration.flushInterval, "migration.flush_interval");
    check(running.accounts.stateFile == next.accounts.stateFile, "accounts.state_file");
    // The Redis connections are made once at start; a reload keeps the running ones (issue 11).
    const StateConfig& a = running.state;
    const StateConfig& b = next.state;
    check(a.backend == b.backend, "state.backend");
    check(a.address == b.address, "state.address");
    check(a.username == b.username, "state.username");
    check(a.password == b.password, "state.password");
    check(a.database == b.database, "state.database");
    check(a.keyPrefix == b.keyPrefix, "state.key_prefix");
    check(a.connectTimeoutMs == b.connectTimeoutMs, "state.connect_timeout");
    check(a.commandTimeoutMs == b.commandTimeoutMs, "state.command_timeout");
    check(a.replayLimit == b.replayLimit, "state.replay_limit");
    check(a.retryInterval == b.retryInterval, "state.retry_interval");
    return changed;
}

}  // namespace subproxy
