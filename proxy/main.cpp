// subproxy [-f] [-c FILE] [-t] [-r [REPORT OPTIONS]] [-b] [-u ADDR] [-V]   — see man/subproxy.8
#include <getopt.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>

#include "os/daemon.h"
#include "io/guard.h"
#include "os/deploy_check.h"
#include "os/fd_limits.h"
#include "os/log.h"
#include "io/migration_store.h"
#include "io/shared_cli.h"
#include "os/pidfile.h"
#include "os/privileges.h"
#include "io/status_http.h"
#include "sasl_server.h"
#include "io/hub.h"

namespace {

void usage() {
    std::cerr << "usage: subproxy [-f] [-c FILE] [-t] [-r [REPORT OPTIONS]] [-b] [-u ADDR] [-V]\n"
                 "  -c FILE  configuration file (default /etc/subproxy/subproxy.conf)\n"
                 "  -f       stay in the foreground; log to stderr as well as syslog\n"
                 "  -t       check the configuration, certificates and SASL setup, then exit\n"
                 "  -r       print the migration report (from migration.state_file), then exit\n"
                 "  -b       list the bans on password guessers (guard.control_socket or guard.state_file)\n"
                 "  -u ADDR  lift the ban on ADDR (an address, or its IPv6 prefix), then exit\n"
                 "  -V       print the version\n"
                 "report options (with -r):\n"
                 "  --json | --csv     machine-readable output (default: a text table)\n"
                 "  --history          submissions and distinct users per day and dialled port\n"
                 "  --port N           only what came through dialled port N\n"
                 "  --since T          records with a submission at or after T\n"
                 "  --not-since T      users with no submission since T (all their records)\n"
                 "  T is a number of days before now, or a date YYYY-MM-DD (00:00 UTC)\n";
}

// Long options exist only for -r; values above any short option's character.
enum ReportOption { kJson = 256, kCsv, kHistory, kPort, kSince, kNotSince };

const option kLongOptions[] = {
    {"json", no_argument, nullptr, kJson},           {"csv", no_argument, nullptr, kCsv},
    {"history", no_argument, nullptr, kHistory},     {"port", required_argument, nullptr, kPort},
    {"since", required_argument, nullptr, kSince},   {"not-since", required_argument, nullptr, kNotSince},
    {"help", no_argument, nullptr, 'h'},             {nullptr, 0, nullptr, 0},
};

// One report option into `query`; "" when good, else what is wrong.
std::string reportOption(int opt, const char* arg, std::int64_t now, subproxy::MigrationQuery& query) {
    using subproxy::MigrationFormat;
    switch (opt) {
    case kJson:
    case kCsv: {
        const MigrationFormat format = opt == kJson ? MigrationFormat::Json : MigrationFormat::Csv;
        if (query.format != MigrationFormat::Text && query.format != format) {
            return "--json and --csv exclude each other";
        }
        query.format = format;
        return {};
    }
    case kHistory:
        query.history = true;
        return {};
    case kPort: {
        char* end = nullptr;
        const long port = std::strtol(arg, &end, 10);
        if (*arg == '\0' || *end != '\0' || port < 1 || port > 65535) {
            return std::string("--port ") + arg + ": not a port number (1-65535)";
        }
        query.filter.port = static_cast<int>(port);
        return {};
    }
    default: {
        const auto when = subproxy::parseReportTime(arg, now);
        if (!when) {
            return std::string(opt == kSince ? "--since " : "--not-since ") + arg +
                   ": give a number of days (0-36500) or a date YYYY-MM-DD";
        }
        (opt == kSince ? query.filter.since : query.filter.notSince) = *when;
        return {};
    }
    }
}

// -t with state.backend "redis": Redis is pinged.  Unreachable is a warning (the daemon starts
// all the same, on its own state, and connects when Redis is there); a refused login is an
// error.  Returns the exit code's share.
int checkStateBackend(const subproxy::Config& config, const std::string& configFile) {
    if (config.state.backend != subproxy::StateBackend::Redis) {
        return 0;
    }
    using Result = subproxy::SharedStateCheck::Result;
    const auto check = subproxy::checkSharedState(config.state);
    const std::string where = subproxy::settingLocation(configFile, "state.address");
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

int main(int argc, char** argv) {
    std::string configFile = "/etc/subproxy/subproxy.conf";
    bool foreground = false;
    bool check = false;
    bool report = false;
    std::string guardCommand;  // -b, -u ADDR
    subproxy::MigrationQuery query;
    bool reportOptions = false;
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    int opt;
    while ((opt = getopt_long(argc, argv, "c:ftrbu:Vh", kLongOptions, nullptr)) != -1) {
        if (opt >= kJson) {
            if (const std::string why = reportOption(opt, optarg, now, query); !why.empty()) {
                std::cerr << "subproxy: " << why << "\n";
                return 2;
            }
            reportOptions = true;
            continue;
        }
        switch (opt) {
        case 'c':
            configFile = optarg;
            break;
        case 'f':
            foreground = true;
            break;
        case 't':
            check = true;
            break;
        case 'r':
            report = true;
            break;
        case 'b':
            guardCommand = "list";
            break;
        case 'u':
            guardCommand = std::string("lift ") + optarg;
            break;
        case 'V':
            std::cout << "subproxy " SUBPROXY_VERSION "\n";
            return 0;
        default:
            usage();
            return opt == 'h' ? 0 : 2;
        }
    }
    if (optind != argc) {
        usage();
        return 2;
    }
    if (reportOptions && !report) {
        std::cerr << "subproxy: --json, --csv, --history, --port, --since and --not-since go with -r\n";
        return 2;
    }
    if (query.history && query.filter.notSince) {
        std::cerr << "subproxy: --not-since selects users; the --history table counts days\n";
        return 2;
    }
    if (!configFile.empty() && configFile[0] != '/') {
        // SIGHUP re-reads it after the daemon changed to /.
        if (char* cwd = ::getcwd(nullptr, 0)) {
            configFile = std::string(cwd) + "/" + configFile;
            std::free(cwd);
        }
    }
    if (!guardCommand.empty()) {
        return subproxy::guardCommandLine(configFile, guardCommand);
    }
    if (report) {
        try {
            return subproxy::printMigrationReport(subproxy::loadConfig(configFile), query, now);
        } catch (const std::exception& e) {
            std::cerr << e.what() << "\n";
            return 1;
        }
    }
    if (check) {
        int rc = subproxy::checkConfiguration(configFile);
        if (rc == 0) {
            const subproxy::Config config = subproxy::loadConfig(configFile);
            // Files the unprivileged account must still reach after start-up.
            for (const auto& problem : subproxy::deploymentProblems(config, configFile)) {
                std::cerr << problem << "\n";
                rc = 1;
            }
            // Worth fixing, but the daemon runs safely with them: printed, the status stays.
            for (const auto& warning : subproxy::deploymentWarnings(config, configFile)) {
                std::cerr << warning << "\n";
            }
            rc = std::max(rc, checkStateBackend(config, configFile));
            // Also a warning, not an error: the daemon runs, but sheds load early (issue 8).
            const std::string fds = subproxy::fileLimitWarning(config, subproxy::raiseFileLimit());
            if (!fds.empty()) {
                std::cerr << subproxy::settingLocation(configFile, "limits.max_sessions") << ": warning: " << fds
                          << "\n";
            }
        }
        if (rc == 0) {
            std::cout << configFile << ": configuration OK\n";
        }
        return rc;
    }
    std::shared_ptr<const subproxy::Runtime> runtime;
    try {
        runtime = subproxy::loadRuntime(configFile);
    } catch (const subproxy::ConfigError& e) {
        std::cerr << e.what() << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << configFile << ": " << e.what() << "\n";
        return 1;
    }
    const auto& config = runtime->config;
    // Start-up problems go to the terminal too; only a daemon that made it stops using stderr.
    subproxy::logOpen(subproxy::syslogFacility(config.logFacility), true);
    try {
        // Root: bind, load keys, initialise SASL, then become config.daemon.user.
        const bool dropping = ::getuid() == 0 && config.daemon.user != "root";
        subproxy::Account account;
        if (dropping) {
            account = subproxy::lookupAccount(config.daemon.user, config.daemon.group);
        }
        // First, so that the file has every line; and while still root: log_file may live in
        // a directory only root can write (/var/log).  A file made here goes to the account we
        // drop to, which reopens it at SIGUSR1 and SIGHUP.
        if (!config.logFile.empty()) {
            subproxy::logOpenFile(config.logFile, dropping ? std::optional<subproxy::FileOwner>(
                                                                 subproxy::FileOwner{account.uid, account.gid})
                                                           : std::nullopt);
        }
        if (::getuid() == 0 && !dropping) {
            subproxy::logWarning("running as root (user = \"root\"): every session is served with full privileges");
        }
        if (const std::string fds = subproxy::fileLimitWarning(config, subproxy::raiseFileLimit()); !fds.empty()) {
            subproxy::logWarning(fds);
        }
        if (config.auth.backend == subproxy::AuthBackend::Sasl) {
            subproxy::sasl::initialize(config.auth.saslService, config.auth.saslConfigDir);
        }
        // Fork before the event loop and the SASL worker threads exist; the parent exits
        // once the child serves, with the child's status when it fails first.
        subproxy::Daemonizer daemonizer;
        if (!foreground) {
            daemonizer.detach();
        }
        // Before binding: a second instance names the running one rather than "address in use".
        std::unique_ptr<subproxy::PidFile> pidFile;
        if (!config.daemon.pidFile.empty()) {
            pidFile = std::make_unique<subproxy::PidFile>(config.daemon.pidFile, account.uid, account.gid, dropping);
        }
        subproxy::Hub hub(configFile, runtime);  // binds the listeners of every worker
        std::unique_ptr<subproxy::StatusHttp> status;
        if (config.status.enabled) {
            status = std::make_unique<subproxy::StatusHttp>(
                hub.base(), config.status, [&hub](std::vector<std::uint64_t>* perWorker) { return hub.metrics(perWorker); },
                hub.migration(),
                [&hub, configFile] {
                    return "\"config_file\": " + subproxy::jsonString(configFile) +
                           ", \"pid\": " + std::to_string(::getpid()) +
                           ", \"hostname\": " + subproxy::jsonString(hub.runtime().config.hostname);
                },
                [&hub] { return static_cast<std::uint64_t>(hub.guard().activeBans()); },
                dropping ? account.uid : static_cast<uid_t>(-1), dropping ? account.gid : static_cast<gid_t>(-1));
        }
        if (dropping) {
            subproxy::dropPrivileges(account);
            subproxy::logInfo("running as user " + config.daemon.user + " (uid " + std::to_string(account.uid) +
                              ", gid " + std::to_string(account.gid) + ")");
        }
        // After the drop: the state file is written by the account that will keep writing it.
        subproxy::MigrationStore store(hub.base(), hub.migration(), config.migration.stateFile,
                                       config.migration.flushInterval);
        if (status) {
            subproxy::logInfo("status endpoint on " + status->url());
        }
        subproxy::logToStderr(foreground);
        daemonizer.ready();
        return hub.run();
    } catch (const std::exception& e) {
        subproxy::logError(e.what());
        return 1;
    }
}
