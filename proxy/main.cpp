// subproxy [-f] [-c FILE] [-t] [-V]   — see man/subproxy.8
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>

#include "log.h"
#include "sasl_server.h"
#include "server.h"

namespace {

void usage() {
    std::cerr << "usage: subproxy [-f] [-c FILE] [-t] [-V]\n"
                 "  -c FILE  configuration file (default /etc/subproxy/subproxy.conf)\n"
                 "  -f       stay in the foreground; log to stderr as well as syslog\n"
                 "  -t       check the configuration, certificates and SASL setup, then exit\n"
                 "  -V       print the version\n";
}

}  // namespace

int main(int argc, char** argv) {
    std::string configFile = "/etc/subproxy/subproxy.conf";
    bool foreground = false;
    bool check = false;
    int opt;
    while ((opt = getopt(argc, argv, "c:ftVh")) != -1) {
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
    if (!configFile.empty() && configFile[0] != '/') {
        // SIGHUP re-reads it after the daemon changed to /.
        if (char* cwd = ::getcwd(nullptr, 0)) {
            configFile = std::string(cwd) + "/" + configFile;
            std::free(cwd);
        }
    }
    if (check) {
        const int rc = subproxy::checkConfiguration(configFile);
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
        if (config.auth.backend == subproxy::AuthBackend::Sasl) {
            subproxy::sasl::initialize(config.auth.saslService, config.auth.saslConfigDir);
        }
        subproxy::Server server(configFile, runtime);  // binds the listeners
        if (!foreground && ::daemon(0, 0) != 0) {
            subproxy::logError(std::string("cannot go to the background: ") + std::strerror(errno));
            return 1;
        }
        subproxy::logToStderr(foreground);
        return server.run();
    } catch (const std::exception& e) {
        subproxy::logError(e.what());
        return 1;
    }
}
