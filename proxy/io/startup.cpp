#include <unistd.h>

#include "io/startup.h"

#include <algorithm>
#include <iostream>
#include <memory>
#include <optional>

#include "io/hub.h"
#include "io/shared_cli.h"
#include "io/migration_store.h"
#include "io/status_http.h"
#include "os/daemon.h"
#include "os/deploy_check.h"
#include "os/fd_limits.h"
#include "os/log.h"
#include "os/pidfile.h"
#include "os/privileges.h"
#include "sasl_server.h"

namespace subproxy {

namespace {

// -t with state.backend "redis": Redis is pinged.  Unreachable is a warning (the daemon starts
// all the same, on its own state, and connects when Redis is there); a refused login is an
// error.  Returns the exit code's share.
int checkStateBackend(const Config& config, const std::string& configFile) {
    if (config.state.backend != StateBackend::Redis) {
        return 0;
    }
    using Result = SharedStateCheck::Result;
    const auto check = checkSharedState(config.state);
    const std::string where = settingLocation(configFile, "state.address");
    if (check.result == Result::Ok) {
        std::cout << where << ": " << check.text << "\n";
        return 0;
    }
    if (check.result == Result::Unreachable) {
        std::cerr << where << ": warning: " << check.text
                  << " (subproxy starts all the same, on this gateway's own state, and connects when Redis is up)\n";
        return 0;
    }
    std::cerr << where << ": " << check.text << "\n";
    return 1;
}

}  // namespace

int runConfigurationCheck(const std::string& configFile) {
    int rc = checkConfiguration(configFile);
    if (rc == 0) {
        const Config config = loadConfig(configFile);
        // Files the unprivileged account must still reach after start-up.
        for (const auto& problem : deploymentProblems(config, configFile)) {
            std::cerr << problem << "\n";
            rc = 1;
        }
        // Worth fixing, but the daemon runs safely with them: printed, the status stays.
        for (const auto& warning : deploymentWarnings(config, configFile)) {
            std::cerr << warning << "\n";
        }
        rc = std::max(rc, checkStateBackend(config, configFile));
        // Also a warning, not an error: the daemon runs, but sheds load early (issue 8).
        const std::string fds = fileLimitWarning(config, raiseFileLimit());
        if (!fds.empty()) {
            std::cerr << settingLocation(configFile, "limits.max_sessions") << ": warning: " << fds
                      << "\n";
        }
    }
    if (rc == 0) {
        std::cout << configFile << ": configuration OK\n";
    }
    return rc;
}

namespace {


// Before the fork and while still root: who to become, the log file (root may own its
// directory, /var/log), the warnings worth a line, Cyrus SASL.  True when privileges are to be
// dropped to `account`.
bool prepareAsRoot(const Config& config, Account& account) {
    // Root: bind, load keys, initialise SASL, then become config.daemon.user.
    const bool dropping = ::getuid() == 0 && config.daemon.user != "root";
    if (dropping) {
        account = lookupAccount(config.daemon.user, config.daemon.group);
    }
    // First, so that the file has every line; and while still root: log_file may live in
    // a directory only root can write (/var/log).  A file made here goes to the account we
    // drop to, which reopens it at SIGUSR1 and SIGHUP.
    if (!config.logFile.empty()) {
        logOpenFile(config.logFile,
                    dropping ? std::optional<FileOwner>(FileOwner{account.uid, account.gid}) : std::nullopt);
    }
    if (::getuid() == 0 && !dropping) {
        logWarning("running as root (user = \"root\"): every session is served with full privileges");
    }
    if (const std::string fds = fileLimitWarning(config, raiseFileLimit()); !fds.empty()) {
        logWarning(fds);
    }
    if (config.auth.backend == AuthBackend::Sasl) {
        sasl::initialize(config.auth.saslService, config.auth.saslConfigDir);
    }
    return dropping;
}

// The status endpoint (bound now, before privileges go), or nullptr without a status group.
std::unique_ptr<StatusHttp> openStatus(Hub& hub, const std::string& configFile, bool dropping,
                                       const Account& account) {
    const Config& config = hub.runtime().config;
    if (!config.status.enabled) {
        return nullptr;
    }
    return std::make_unique<StatusHttp>(
        hub.base(), config.status, [&hub](std::vector<std::uint64_t>* perWorker) { return hub.metrics(perWorker); },
        hub.migration(),
        [&hub, configFile] {
            return "\"config_file\": " + jsonString(configFile) + ", \"pid\": " + std::to_string(::getpid()) +
                   ", \"hostname\": " + jsonString(hub.runtime().config.hostname);
        },
        [&hub] { return static_cast<std::uint64_t>(hub.guard().activeBans()); },
        dropping ? account.uid : static_cast<uid_t>(-1), dropping ? account.gid : static_cast<gid_t>(-1));
}

}  // namespace

int runDaemon(const std::string& configFile, bool foreground) {
    const std::shared_ptr<const Runtime> runtime = loadRuntimeOrSay(configFile);
    if (!runtime) {
        return 1;
    }
    const auto& config = runtime->config;
    // Start-up problems go to the terminal too; only a daemon that made it stops using stderr.
    // Standard error that is the journal (systemd) has them from syslog already.
    const bool stderrCopy = !stderrIsTheJournal();
    logOpen(syslogFacility(config.logFacility), stderrCopy);
    try {
        Account account;
        const bool dropping = prepareAsRoot(config, account);
        // Fork before the event loop and the SASL worker threads exist; the parent exits
        // once the child serves, with the child's status when it fails first.
        Daemonizer daemonizer;
        if (!foreground) {
            daemonizer.detach();
        }
        // Before binding: a second instance names the running one rather than "address in use".
        std::unique_ptr<PidFile> pidFile;
        if (!config.daemon.pidFile.empty()) {
            pidFile = std::make_unique<PidFile>(config.daemon.pidFile, account.uid, account.gid, dropping);
        }
        Hub hub(configFile, runtime);  // binds the listeners of every worker
        const auto status = openStatus(hub, configFile, dropping, account);  // before the drop, too
        if (dropping) {
            dropPrivileges(account);
            logInfo("running as user " + config.daemon.user + " (uid " + std::to_string(account.uid) +
                    ", gid " + std::to_string(account.gid) + ")");
        }
        // After the drop: the state file is written by the account that will keep writing it.
        MigrationStore store(hub.base(), hub.migration(), config.migration.stateFile, config.migration.flushInterval);
        if (status) {
            logInfo("status endpoint on " + status->url());
        }
        logToStderr(foreground && stderrCopy);
        daemonizer.ready();
        return hub.run();
    } catch (const std::exception& e) {
        logError(e.what());
        return 1;
    }
}

}  // namespace subproxy
