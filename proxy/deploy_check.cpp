#include "deploy_check.h"

#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>

#include "migration_store.h"
#include "privileges.h"

namespace subproxy {

namespace {

struct CyrusOption {
    std::string value;
    int line = 0;
};

// Cyrus application file: "key: value" lines (lib/config.c); '#' starts a comment.
std::map<std::string, CyrusOption> readCyrusFile(const std::string& path) {
    std::map<std::string, CyrusOption> options;
    std::ifstream in(path);
    std::string line;
    int lineNo = 0;
    while (std::getline(in, line)) {
        ++lineNo;
        if (line.empty() || line[0] == '#') {
            continue;
        }
        const auto colon = line.find(':');
        if (colon == std::string::npos) {
            continue;
        }
        std::string key = line.substr(0, colon);
        std::string value = line.substr(colon + 1);
        const auto trim = [](std::string& s) {
            s.erase(0, s.find_first_not_of(" \t"));
            s.erase(s.find_last_not_of(" \t\r") + 1);
        };
        trim(key);
        trim(value);
        options[key] = CyrusOption{value, lineNo};
    }
    return options;
}

std::string directoryOf(const std::string& path) {
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

// The pid file is created by whoever starts the daemon: root before it drops privileges, or
// the service user itself under systemd's User= (which also runs ExecStartPre=subproxy -t).
// Either way that is the account running this check, so access(2) answers for it.
std::string pidFileProblem(const Config& config, const std::string& configFile) {
    const std::string& path = config.daemon.pidFile;
    if (path.empty()) {
        return {};
    }
    const bool exists = ::access(path.c_str(), F_OK) == 0;
    const std::string target = exists ? path : directoryOf(path);
    if (::access(target.c_str(), exists ? W_OK : W_OK | X_OK) == 0) {
        return {};
    }
    const int err = errno;
    const passwd* pw = ::getpwuid(::getuid());
    const std::string user = pw ? pw->pw_name : "uid " + std::to_string(::getuid());
    return settingLocation(configFile, "pid_file") + ": pid_file " + (exists ? "" : "directory ") + target +
           ": user " + user + " cannot " + (exists ? "write it" : "create the pid file there") + " (" +
           std::strerror(err) + "); under systemd use RuntimeDirectory=subproxy and pid_file = "
           "\"/run/subproxy/subproxy.pid\"";
}

}  // namespace

std::vector<std::string> deploymentProblems(const Config& config, const std::string& configFile) {
    std::vector<std::string> problems;
    if (std::string pid = pidFileProblem(config, configFile); !pid.empty()) {
        problems.push_back(std::move(pid));
    }
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
        const std::string cyrus = config.auth.saslConfigDir + "/" + config.auth.saslService + ".conf";
        needs.push_back({cyrus, R_OK, settingLocation(configFile, "auth.sasl_config_dir") +
                                          ": Cyrus SASL application file"});
        const auto options = readCyrusFile(cyrus);
        const auto get = [&](const std::string& key) {
            auto it = options.find(key);
            return it == options.end() ? CyrusOption{} : it->second;
        };
        // A file Cyrus opens for the account, named in the Cyrus file (or its built-in default).
        auto needCyrusFile = [&](const char* option, const char* fallback, int mode, const char* why) {
            CyrusOption o = get(option);
            if (o.value.empty()) {
                o.value = fallback;
            }
            needs.push_back({o.value, mode,
                             cyrus + (o.line ? ":" + std::to_string(o.line) : "") + ": " + option + " (" + why + ")"});
        };
        const CyrusOption pwcheck = get("pwcheck_method");
        if (pwcheck.value.find("saslauthd") != std::string::npos) {
            // connect(2) to a Unix socket needs write permission on it.
            needCyrusFile("saslauthd_path", "/var/run/saslauthd/mux", W_OK, "add the user to group sasl");
        }
        const CyrusOption plugin = get("auxprop_plugin");
        if ((pwcheck.value.empty() || pwcheck.value.find("auxprop") != std::string::npos) &&
            (plugin.value.empty() || plugin.value.find("sasldb") != std::string::npos)) {
            needCyrusFile("sasldb_path", "/etc/sasldb2", R_OK, "read at every AUTH; add the user to group sasl");
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
