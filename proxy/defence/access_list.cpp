// Allow/deny lists.  See access_list.h.
#include "defence/access_list.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "wire/text_util.h"

namespace subproxy {

AccessVerdict checkAccess(const AccessConfig& access, const IpAddress& client) {
    if (access.allow.contains(client)) {
        return AccessVerdict::Allow;
    }
    if (access.deny.contains(client)) {
        return AccessVerdict::Deny;
    }
    return AccessVerdict::None;
}

bool loadCidrFile(const std::string& path, CidrList& out, int& line, std::string& error) {
    std::ifstream in(path);
    if (!in) {
        line = 0;
        error = "cannot read " + path + ": " + std::strerror(errno);
        return false;
    }
    std::string text;
    line = 0;
    while (std::getline(in, text)) {
        ++line;
        if (!text.empty() && text.back() == '\r') {
            text.pop_back();  // a file edited on Windows
        }
        const auto hash = text.find('#');
        const std::string_view entry = trimSpaces(std::string_view(text).substr(0, hash));
        if (entry.empty()) {
            continue;
        }
        if (!out.add(entry)) {
            error = "not an address or CIDR block: \"" + printable(entry) + "\"";
            return false;
        }
    }
    return true;
}

}  // namespace subproxy
