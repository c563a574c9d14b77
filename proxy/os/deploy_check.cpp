#include "os/deploy_check.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>

#include "cyrus_file.h"
#include "io/migration_store.h"
#include "io/shared_cli.h"
#include "os/privileges.h"
#include "wire/text_util.h"

namespace subproxy {

namespace {

std::string octal(mode_t mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
    return buf;
}

std::string userName(uid_t uid) {
    const passwd* pw = ::getpwuid(uid);
    return pw ? pw->pw_name : "uid " + std::to_string(uid);
}

std::string groupName(gid_t gid) {
    const group* gr = ::getgrgid(gid);
    return gr ? gr->gr_name : "gid " + std::to_string(gid);
}

// What is wrong with `dir` as a place where root or `account` writes files, "" if nothing:
// only root and the account may own it or write in it.
std::string openDirectory(const std::string& dir, const Account& account) {
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        return {};  // missing: the file checks say so
    }
    std::string who;
    if ((st.st_mode & S_IWOTH) != 0) {
        who = "is writable by every local user";
    } else if ((st.st_mode & S_IWGRP) != 0 && st.st_gid != 0 && st.st_gid != account.gid) {
        who = "is writable by group " + groupName(st.st_gid);
    } else if (st.st_uid != 0 && st.st_uid != account.uid) {
        return "directory " + dir + " belongs to user " + userName(st.st_uid) +
               ", who can replace or remove what subproxy writes there";
    } else {
        return {};
    }
    // The files are created with O_EXCL|O_NOFOLLOW and renamed into place, so a planted link
    // is never followed; what is left is what others can do to the names themselves.
    return "directory " + dir + " (mode " + octal(st.st_mode) + ") " + who +
           ((st.st_mode & S_ISVTX) != 0
                ? "; the sticky bit keeps them from removing subproxy's files, but they can still create "
                  "the names first"
                : " and has no sticky bit: they can replace or delete subproxy's files");
}

// The pid file and the log file are opened by whoever starts the daemon: root before it
// drops privileges, or the service user itself under systemd's User= (which also runs
// ExecStartPre=subproxy -t).  Either way that is the account running this check, so
// access(2) answers for it.
std::string startFileProblem(const std::string& path, const std::string& key, const char* what,
                             const std::string& configFile, const char* hint) {
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
    return settingLocation(configFile, key) + ": " + key + " " + (exists ? "" : "directory ") + target + ": user " +
           user + " cannot " + (exists ? std::string("write it") : std::string("create ") + what + " there") + " (" + std::strerror(err) + "); " +
           hint;
}

std::vector<std::string> startFileProblems(const Config& config, const std::string& configFile) {
    std::vector<std::string> problems;
    for (std::string problem :
         {startFileProblem(config.daemon.pidFile, "pid_file", "the pid file", configFile,
                           "under systemd use RuntimeDirectory=subproxy and pid_file = \"/run/subproxy/subproxy.pid\""),
          startFileProblem(config.logFile, "log_file", "the log file", configFile,
                           "under systemd use LogsDirectory=subproxy and log_file = "
                           "\"/var/log/subproxy/subproxy.log\"")}) {
        if (!problem.empty()) {
            problems.push_back(std::move(problem));
        }
    }
    return problems;
}

// The Cyrus application file and the files it makes Cyrus open as the account.
void addCyrusNeeds(const Config& config, const std::string& configFile, std::vector<FileNeed>& needs) {
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
void addStateFileNeed(const std::string& path, const std::string& key, const std::string& configFile,
                      std::vector<FileNeed>& needs) {
    if (path.empty()) {
        return;
    }
    const std::string where = settingLocation(configFile, key);
    needs.push_back({directoryOf(path), W_OK, where + ": " + key + " directory (written as temp file + rename)"});
    if (::access(path.c_str(), F_OK) == 0) {
        needs.push_back({path, R_OK, where + ": " + key});
    }
}

// What the account must still be able to open after start-up, and when it does.
std::vector<FileNeed> filesTheAccountNeeds(const Config& config, const std::string& configFile) {
    std::vector<FileNeed> needs;
    needs.push_back({configFile, R_OK, configFile + ": configuration (re-read at SIGHUP)"});
    needs.push_back({config.tls.cert, R_OK, settingLocation(configFile, "tls.cert") + ": tls.cert (reloaded at SIGHUP)"});
    needs.push_back({config.tls.key, R_OK, settingLocation(configFile, "tls.key") + ": tls.key (reloaded at SIGHUP)"});
    if (config.upstream.verify && !config.upstream.caFile.empty()) {
        needs.push_back({config.upstream.caFile, R_OK,
                         settingLocation(configFile, "upstream.ca_file") + ": upstream.ca_file (reloaded at SIGHUP)"});
    }
    if (config.auth.backend == AuthBackend::Sasl) {
        addCyrusNeeds(config, configFile, needs);
    }
    addStateFileNeed(config.migration.stateFile, "migration.state_file", configFile, needs);
    addStateFileNeed(config.guard.stateFile, "guard.state_file", configFile, needs);
    // Made at start by root and handed to the account; one that exists already keeps its
    // owner, and the account must be able to open it again at SIGUSR1 and SIGHUP.
    if (!config.logFile.empty() && ::access(config.logFile.c_str(), F_OK) == 0) {
        needs.push_back({config.logFile, W_OK, settingLocation(configFile, "log_file") +
                                                   ": log_file (reopened at SIGUSR1 and SIGHUP)"});
    }
    return needs;
}

}  // namespace

std::vector<std::string> deploymentProblems(const Config& config, const std::string& configFile) {
    std::vector<std::string> problems = startFileProblems(config, configFile);
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
    for (auto& p : accountProblems(account, filesTheAccountNeeds(config, configFile))) {
        problems.push_back(p);
    }
    return problems;
}

std::vector<std::string> deploymentWarnings(const Config& config, const std::string& configFile) {
    // The account the daemon writes as: `user` when root starts it, else whoever runs -t
    // (systemd's User=, which the unit's ExecStartPre shares).
    Account account;
    account.uid = ::getuid();
    account.gid = ::getgid();
    if (::getuid() == 0 && config.daemon.user != "root") {
        try {
            account = lookupAccount(config.daemon.user, config.daemon.group);
        } catch (const std::exception&) {
            // deploymentProblems names the unknown user; root alone is trusted meanwhile.
        }
    }
    std::vector<std::string> warnings;
    const std::pair<const std::string*, const char*> written[] = {
        {&config.guard.stateFile, "guard.state_file"},
        {&config.migration.stateFile, "migration.state_file"},
        {&config.accounts.stateFile, "accounts.state_file"},
        {&config.daemon.pidFile, "pid_file"},
        {&config.guard.controlSocket, "guard.control_socket"},
        {&config.logFile, "log_file"},
    };
    for (const auto& [path, key] : written) {
        if (path->empty()) {
            continue;
        }
        const std::string why = openDirectory(directoryOf(*path), account);
        if (!why.empty()) {
            warnings.push_back(settingLocation(configFile, key) + ": warning: " + key + ": " + why +
                               "; use a directory only root and the daemon's user can write "
                               "(e.g. /var/lib/subproxy or /run/subproxy, mode 0750)");
        }
    }
    return warnings;
}

int printMigrationReport(const Config& config, const MigrationQuery& query, std::int64_t now) {
    if (config.state.backend == StateBackend::Redis) {
        return printSharedMigrationReport(config, query, now);  // every gateway's, from Redis
    }
    if (config.migration.stateFile.empty()) {
        std::cerr << config.file << ": migration.state_file is not set: the report is kept in memory only "
                                    "(see the status endpoint's /migration)\n";
        return 1;
    }
    std::string error;
    const auto report = readMigrationFile(config.migration.stateFile, migrationLimits(config.migration), &error);
    if (!report) {
        std::cerr << error << "\n";
        return 1;
    }
    std::cout << report->render(query, now);
    return 0;
}

}  // namespace subproxy
