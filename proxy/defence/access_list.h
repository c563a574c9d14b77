// Static allow/deny lists of CIDR blocks (issue 3, item 3).  Pure: the files are read when the
// configuration is read, so SIGHUP reloads them with it (and `subproxy -t` checks them).
#pragma once
#include <string>

#include "wire/cidr.h"

namespace subproxy {

struct AccessConfig {
    CidrList allow;         // access.allow plus the lines of access.allow_file
    CidrList deny;
    std::string allowFile;  // empty: none
    std::string denyFile;
};

enum class AccessVerdict { None, Allow, Deny };

// Allow beats deny, so "deny 10.0.0.0/8, allow 10.1.2.3" exempts one host of a denied block.
// An allowed client skips the DNSBL lookups and the trap; a denied one is refused at accept.
AccessVerdict checkAccess(const AccessConfig& access, const IpAddress& client);

// One CIDR or address per line; '#' starts a comment; blank lines are ignored.  Returns false
// with `line` (1-based) and `error` set on the first bad line or when the file is unreadable
// (line 0).
bool loadCidrFile(const std::string& path, CidrList& out, int& line, std::string& error);

}  // namespace subproxy
