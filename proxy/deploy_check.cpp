#include "deploy_check.h"

#include <unistd.h>

#include <iostream>

#include "cyrus_file.h"
#include "migration_store.h"
#include "privileges.h"

namespace subproxy {

namespace {

std::string directoryOf(const std::string& path) {
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

std::vector<std::string> deploymentProblems(const Config& config, const std::string& configFile) {
    std::vector<std::string> problems;
    if (::getuid() != 0 || config.daemon.user == "root") {
        return problems;
    }
    Account account;
    try {
        account = lookupAccount(config.daemon.user, config.daemon.group);
    } catch (const std::exception& e) {
        const std::string key = std::string(e.what()).rfind("group", 0) == 0 ? "group" : "user";
        problems.push_back(settingLocation(configFile, key) + ": " + e.what());
        return problems;
    }
    std::vector<FileNeed> needs;
    needs.push_back({configFile, R_OK, configFile + ": configuration (re-read at SIGHUP)"});
    needs.push_back({config.tls.cert, R_OK, settingLocation(configFile, "tls.cert") + ": tls.cert (reloaded at SIGHUP)"});
    needs.push_back({config.tls.key, R_OK, settingLocation(configFile, "tls.key") + ": tls.key (reloaded at SIGHUP)"});
    if (config.upstream.verify && !config.upstream.caFile.empty()) {
        needs.push_back({config.upstream.caFile, R_OK,
                         settingLocation(configFile, "upstream.ca_file") + ": upstream.ca_file (reloaded at SIGHUP)"});
    }
    if (config.auth.backend == AuthBackend::Sasl) {
        const std::string cyrus = sasl::cyrusFilePath(config.auth.saslConfigDir, config.auth.saslService);
        needs.push_back({cyrus, R_OK, settingLocation(configFile, "auth.sasl_config_dir") +
                                          ": Cyrus SASL application file"});
        const auto options = sasl::readCyrusFile(cyrus);
        // A file Cyrus opens for the account, named in the Cyrus file (or its built-in default).
        auto needCyrusFile = [&](const char* option, const sasl::CyrusOption& o, int mode, const char* why) {
            needs.push_back({o.value, mode,
                             cyrus + (o.line ? ":" + std::to_string(o.line) : "") + ": " + option + " (" + why + ")"});
        };
        if (sasl::cyrusOption(options, "pwcheck_method").value.find("saslauthd") != std::string::npos) {
            // connect(2) to a Unix socket needs write permission on it.
            needCyrusFile("saslauthd_path", sasl::cyrusOption(options, "saslauthd_path", "/var/run/saslauthd/mux"),
                          W_OK, "add the user to group sasl");
        }
        if (const auto sasldb = sasl::sasldbFile(options)) {
            needCyrusFile("sasldb_path", *sasldb, R_OK, "read at every AUTH; add the user to group sasl");
        }
    }
    // State files are rewritten by the daemon, after it dropped to the account.
    auto stateFile = [&](const std::string& path, const std::string& key) {
        if (path.empty()) {
            return;
        }
        const std::string where = settingLocation(configFile, key);
        needs.push_back({directoryOf(path), W_OK, where + ": " + key + " directory (written as temp file + rename)"});
        if (::access(path.c_str(), F_OK) == 0) {
            needs.push_back({path, R_OK, where + ": " + key});
        }
    };
    stateFile(config.migration.stateFile, "migration.state_file");
    stateFile(config.guard.stateFile, "guard.state_file");
    for (auto& p : accountProblems(account, needs)) {
        problems.push_back(p);
    }
    return problems;
}

int printMigrationReport(const Config& config) {
    if (config.migration.stateFile.empty()) {
        std::cerr << config.file << ": migration.state_file is not set: the report is kept in memory only "
                                    "(see the status endpoint's /migration)\n";
        return 1;
    }
    std::string error;
    const auto report = readMigrationFile(config.migration.stateFile,
                                          static_cast<std::size_t>(config.migration.maxEntries), &error);
    if (!report) {
        std::cerr << error << "\n";
        return 1;
    }
    std::cout << report->table();
    return 0;
}

}  // namespace subproxy
