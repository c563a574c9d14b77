// Least privilege: started as root, subproxy binds its sockets, loads keys and initialises
// Cyrus SASL, then becomes `user`/`group` (with the user's supplementary groups, e.g. `sasl`
// for /etc/sasldb2 and the saslauthd mux) before it serves anyone.
#pragma once
#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace subproxy {

struct Account {
    std::string user;
    uid_t uid = 0;
    gid_t gid = 0;
};

// Looks up `user` and `group` (empty: the user's primary group).  Throws std::runtime_error.
Account lookupAccount(const std::string& user, const std::string& group);

// initgroups, setgid, setuid; then checks that root cannot be regained.  Throws on failure.
// glibc applies the change to every thread of the process (the SASL workers too).
void dropPrivileges(const Account& account);

// Which of `files` the account cannot use: (path, R_OK or W_OK).  Checked for real, in a
// forked child that drops to the account, so supplementary groups and ACLs count.  Returns
// one "path: why" per problem, in the order given.
struct FileNeed {
    std::string path;
    int mode;            // R_OK, W_OK or R_OK|W_OK
    std::string where;   // "FILE:LINE: key" for the report
};
std::vector<std::string> accountProblems(const Account& account, const std::vector<FileNeed>& files);

}  // namespace subproxy
