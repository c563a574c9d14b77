// subproxy [-f] [-c FILE] [-t] [-r [REPORT OPTIONS]] [-b] [-u ADDR] [-a] [-A USER] [-V]   — see man/subproxy.8
#include <getopt.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>

#include "io/account_store.h"
#include "io/guard.h"
#include "io/startup.h"
#include "os/deploy_check.h"

namespace {

void usage() {
    std::cerr << "usage: subproxy [-f] [-c FILE] [-t] [-r [REPORT OPTIONS]] [-b] [-u ADDR] [-a] [-A USER] [-V]\n"
                 "  -c FILE  configuration file (default /etc/subproxy/subproxy.conf)\n"
                 "  -f       stay in the foreground; log to stderr as well as syslog\n"
                 "  -t       check the configuration, certificates and SASL setup, then exit\n"
                 "  -r       print the migration report (from migration.state_file), then exit\n"
                 "  -b       list the bans on password guessers (guard.control_socket or guard.state_file)\n"
                 "  -u ADDR  lift the ban on ADDR (an address, or its IPv6 prefix), then exit\n"
                 "  -a       list the flagged accounts (the running daemon, or accounts.state_file)\n"
                 "  -A USER  clear the flags on USER's account (lifts accounts.places.action refuse)\n"
                 "  -V       print the version\n"
                 "report options (with -r):\n"
                 "  --json | --csv     machine-readable output (default: a text table)\n"
                 "  --history          submissions and distinct users per day and dialled port\n"
                 "  --port N           only what came through dialled port N\n"
                 "  --since T          records with a submission at or after T\n"
                 "  --not-since T      users with no submission since T (all their records)\n"
                 "  --flags            the flagged accounts (accounts.state_file) instead\n"
                 "  T is a number of days before now, or a date YYYY-MM-DD (00:00 UTC)\n";
}

// Long options exist only for -r; values above any short option's character.
enum ReportOption { kJson = 256, kCsv, kHistory, kPort, kSince, kNotSince, kFlags };

const option kLongOptions[] = {
    {"json", no_argument, nullptr, kJson},           {"csv", no_argument, nullptr, kCsv},
    {"history", no_argument, nullptr, kHistory},     {"port", required_argument, nullptr, kPort},
    {"since", required_argument, nullptr, kSince},   {"not-since", required_argument, nullptr, kNotSince},
    {"flags", no_argument, nullptr, kFlags},         // issue 12: flagged accounts
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
    case kFlags:
        return {};  // main() notes it
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

// What the command line asks for.
struct CommandLine {
    std::string configFile = "/etc/subproxy/subproxy.conf";
    bool foreground = false;
    bool check = false;
    bool report = false;
    std::string guardCommand;     // -b, -u ADDR
    std::string accountsCommand;  // -a, -A USER
    bool flags = false;           // -r --flags
    subproxy::MigrationQuery query;
    bool reportOptions = false;
};

// Reads argv into `cl`; -1 to go on, else the exit code (usage, -V, a bad option).
int parseCommandLine(int argc, char** argv, std::int64_t now, CommandLine& cl) {
    int opt;
    while ((opt = getopt_long(argc, argv, "c:ftrbu:aA:Vh", kLongOptions, nullptr)) != -1) {
        cl.flags = cl.flags || opt == kFlags;
        if (opt >= kJson) {
            if (const std::string why = reportOption(opt, optarg, now, cl.query); !why.empty()) {
                std::cerr << "subproxy: " << why << "\n";
                return 2;
            }
            cl.reportOptions = true;
            continue;
        }
        switch (opt) {
        case 'c': cl.configFile = optarg; break;
        case 'f': cl.foreground = true; break;
        case 't': cl.check = true; break;
        case 'r': cl.report = true; break;
        case 'b': cl.guardCommand = "list"; break;
        case 'u': cl.guardCommand = std::string("lift ") + optarg; break;
        case 'a': cl.accountsCommand = "list"; break;
        case 'A': cl.accountsCommand = std::string("clear ") + optarg; break;
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
    if (cl.reportOptions && !cl.report) {
        std::cerr << "subproxy: --json, --csv, --history, --port, --since, --not-since and --flags go with -r\n";
        return 2;
    }
    if (cl.query.history && cl.query.filter.notSince) {
        std::cerr << "subproxy: --not-since selects users; the --history table counts days\n";
        return 2;
    }
    if (!cl.configFile.empty() && cl.configFile[0] != '/') {
        // SIGHUP re-reads it after the daemon changed to /.
        if (char* cwd = ::getcwd(nullptr, 0)) {
            cl.configFile = std::string(cwd) + "/" + cl.configFile;
            std::free(cwd);
        }
    }
    return -1;
}

// -r: the migration report, or with --flags the flagged accounts.
int printReport(const CommandLine& cl, std::int64_t now) {
    try {
        const subproxy::Config config = subproxy::loadConfig(cl.configFile);
        return cl.flags ? subproxy::printAccountFlags(config, cl.query.format)
                        : subproxy::printMigrationReport(config, cl.query, now);
    } catch (const std::exception& e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
}

}  // namespace

int main(int argc, char** argv) {
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    CommandLine cl;
    if (const int rc = parseCommandLine(argc, argv, now, cl); rc >= 0) {
        return rc;
    }
    if (!cl.guardCommand.empty()) {
        return subproxy::guardCommandLine(cl.configFile, cl.guardCommand);
    }
    if (!cl.accountsCommand.empty()) {
        return subproxy::accountsCommandLine(cl.configFile, cl.accountsCommand);
    }
    if (cl.report) {
        return printReport(cl, now);
    }
    if (cl.check) {
        return subproxy::runConfigurationCheck(cl.configFile);
    }
    return subproxy::runDaemon(cl.configFile, cl.foreground);
}
