// Internal to the configuration reader (config.cpp and the config_*.cpp group readers): the
// tree walker that turns every problem into a ConfigError naming FILE:LINE and the key.
#pragma once
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <map>
#include <sstream>
#include <tuple>
#include <utility>

#include <libconfig.h++>

#include "wire/cidr.h"
#include "ops/config.h"
#include "wire/text_util.h"


namespace subproxy::config_detail {

using libconfig::Setting;

inline std::string formatWhat(const std::string& file, int line, const std::string& message) {
    if (line > 0) {
        return file + ":" + std::to_string(line) + ": " + message;
    }
    return file + ": " + message;
}

inline std::string quoted(const std::string& s) { return "'" + s + "'"; }

// Walks the parsed tree and turns every problem into a ConfigError with FILE:LINE.
class Reader {
public:
    Reader(std::string name, std::string text) : name_(std::move(name)) {
        if (!text.empty()) {
            sources_[name_] = splitLines(text);
        }
    }

    [[noreturn]] void fail(const Setting& s, const std::string& message) const {
        throw ConfigError(fileOf(s), static_cast<int>(s.getSourceLine()), message);
    }

    std::string fileOf(const Setting& s) const {
        const char* file = s.getSourceFile();
        return file != nullptr ? std::string(file) : name_;
    }

    // Unknown keys are errors, not warnings: a typo like "upstream.hots" would otherwise
    // silently leave the default in place.
    void checkKeys(const Setting& group, std::initializer_list<const char*> allowed) const {
        for (const Setting& child : group) {
            const char* name = child.getName();
            bool known = false;
            for (const char* key : allowed) {
                if (name != nullptr && std::strcmp(name, key) == 0) {
                    known = true;
                }
            }
            if (!known) {
                fail(child, "unknown key " + quoted(child.getPath()));
            }
        }
    }

    void requireGroup(const Setting& s) const {
        if (!s.isGroup()) {
            fail(s, quoted(s.getPath()) + " must be a group { ... }");
        }
    }

    std::string readString(const Setting& s) const {
        if (s.getType() != Setting::TypeString) {
            fail(s, quoted(s.getPath()) + " must be a string");
        }
        return s.c_str();
    }

    std::string readNonEmptyString(const Setting& s) const {
        std::string value = readString(s);
        if (value.empty()) {
            fail(s, quoted(s.getPath()) + " must not be empty");
        }
        return value;
    }

    // An address to bind: numeric only, since resolving a name here would make the bound
    // address depend on DNS at start-up.
    std::string readNumericAddress(const Setting& s) const {
        std::string value = readNonEmptyString(s);
        if (!parseIpAddress(value) || value.find_first_of("/[%") != std::string::npos) {
            fail(s, quoted(s.getPath()) + " must be a numeric IPv4 or IPv6 address (\"0.0.0.0\", \"::\", \"127.0.0.1\", ...)");
        }
        return value;
    }

    // Reply texts and names end up on the wire: no CR, LF or other control bytes.
    std::string readLineText(const Setting& s) const {
        std::string value = readNonEmptyString(s);
        for (char c : value) {
            const auto byte = static_cast<unsigned char>(c);
            if (byte < 0x20 || byte == 0x7f) {
                fail(s, quoted(s.getPath()) + " must not contain control characters");
            }
        }
        return value;
    }

    bool readBool(const Setting& s) const {
        if (s.getType() != Setting::TypeBoolean) {
            fail(s, quoted(s.getPath()) + " must be a boolean (true or false)");
        }
        return static_cast<bool>(s);
    }

    long long readInteger(const Setting& s, long long min, long long max) const {
        long long value = 0;
        if (s.getType() == Setting::TypeInt) {
            value = static_cast<int>(s);
            checkNoWrap(s);
        } else if (s.getType() == Setting::TypeInt64) {
            value = static_cast<long long>(s);
        } else {
            fail(s, quoted(s.getPath()) + " must be an integer");
        }
        if (value < min || value > max) {
            fail(s, quoted(s.getPath()) + " must be between " + std::to_string(min) + " and " +
                        std::to_string(max) + ", not " + std::to_string(value));
        }
        return value;
    }

    int readPositiveInt(const Setting& s) const {
        return static_cast<int>(readInteger(s, 1, INT_MAX));
    }

    template <typename Enum>
    Enum readEnum(const Setting& s, std::initializer_list<std::pair<const char*, Enum>> values)
        const {
        const std::string text = readString(s);
        std::string allowed;
        for (const auto& [name, value] : values) {
            if (iequals(text, name)) {
                return value;
            }
            allowed += (allowed.empty() ? "\"" : ", \"") + std::string(name) + "\"";
        }
        fail(s, "invalid value \"" + printable(text) + "\" for " + quoted(s.getPath()) +
                    ": expected one of " + allowed);
    }

    // A string, or an array/list of strings; never empty.
    std::vector<std::string> readStringList(const Setting& s) const {
        std::vector<std::string> out;
        if (s.getType() == Setting::TypeString) {
            out.push_back(readNonEmptyString(s));
            return out;
        }
        if (!s.isArray() && !s.isList()) {
            fail(s, quoted(s.getPath()) + " must be a string or a list of strings");
        }
        for (const Setting& item : s) {
            if (item.getType() != Setting::TypeString) {
                fail(item, quoted(s.getPath()) + " must hold only strings");
            }
            const std::string value = item.c_str();
            if (value.empty()) {
                fail(item, quoted(s.getPath()) + " must not hold empty strings");
            }
            out.push_back(value);
        }
        if (out.empty()) {
            fail(s, quoted(s.getPath()) + " must not be empty");
        }
        return out;
    }

    // Calls `apply` for `key` in `group` when present.
    void optional(const Setting& group, const char* key,
                  const std::function<void(const Setting&)>& apply) const {
        if (group.exists(key)) {
            apply(group[key]);
        }
    }

private:
    static std::vector<std::string> splitLines(const std::string& text) {
        std::vector<std::string> lines;
        std::istringstream in(text);
        std::string line;
        while (std::getline(in, line)) {
            lines.push_back(line);
        }
        return lines;
    }

    const std::vector<std::string>* sourceLines(const std::string& file) const {
        auto it = sources_.find(file);
        if (it == sources_.end()) {
            std::ifstream in(file);
            std::ostringstream text;
            text << in.rdbuf();
            it = sources_.emplace(file, splitLines(in ? text.str() : std::string())).first;
        }
        return &it->second;
    }

    // libconfig 1.5 stores an integer literal without the L suffix as a 32-bit int and wraps
    // silently (5000000000 reads as 705032704).  Re-read the literal from the source line and
    // refuse one that cannot be a plain int (unless it carries the L suffix).
    void checkNoWrap(const Setting& s) const {
        const char* name = s.getName();
        const unsigned lineNo = s.getSourceLine();
        if (name == nullptr || lineNo == 0) {
            return;
        }
        const auto* lines = sourceLines(fileOf(s));
        if (lineNo > lines->size()) {
            return;
        }
        const std::string& line = (*lines)[lineNo - 1];
        const std::string key(name);
        for (std::size_t at = line.find(key); at != std::string::npos;
             at = line.find(key, at + 1)) {
            if (at > 0 && (std::isalnum(static_cast<unsigned char>(line[at - 1])) ||
                           line[at - 1] == '_' || line[at - 1] == '-' || line[at - 1] == '*')) {
                continue;  // the end of a longer name ("transport" is not "port")
            }
            std::size_t p = at + key.size();
            while (p < line.size() && (line[p] == ' ' || line[p] == '\t')) {
                ++p;
            }
            if (p >= line.size() || (line[p] != '=' && line[p] != ':')) {
                continue;
            }
            ++p;
            while (p < line.size() && (line[p] == ' ' || line[p] == '\t')) {
                ++p;
            }
            const char* start = line.c_str() + p;
            const bool hex = line.compare(p, 2, "0x") == 0 || line.compare(p, 2, "0X") == 0;
            char* end = nullptr;
            errno = 0;
            const long long literal = hex ? static_cast<long long>(std::strtoull(start, &end, 16))
                                          : std::strtoll(start, &end, 10);
            if (end == start) {
                continue;
            }
            const bool fits = errno != ERANGE &&
                              (hex ? literal >= 0 && literal <= 0xffffffffLL
                                   : literal >= INT_MIN && literal <= INT_MAX);
            // Several settings of the same name may share a line (a one-line listen list):
            // only a literal that cannot be a plain int is the wrapped one.
            const bool int64Literal = *end == 'L' || *end == 'l';
            if (!fits && !int64Literal) {
                fail(s, quoted(s.getPath()) +
                            " is too large for a plain integer; write it with an L suffix "
                            "(e.g. 5000000000L)");
            }
            return;
        }
    }

    std::string name_;
    mutable std::map<std::string, std::vector<std::string>> sources_;
};

// The groups read in files of their own.
void readDeployment(const Reader& r, const Setting& root, Config& config);  // config_deploy.cpp
void readAbuseDefence(const Reader& r, const Setting& root, Config& config);  // config_defence.cpp
void readGuard(const Reader& r, const Setting& s, GuardConfig& out);  // config_defence.cpp
void readAccounts(const Reader& r, const Setting& s, AccountsConfig& out);  // config_accounts.cpp
// A list of addresses and CIDR blocks into `out`; returns the texts (config_defence.cpp).
std::vector<std::string> readCidrs(const Reader& r, const Setting& s, CidrList& out);
// A list of nameservers: numeric addresses with an optional port (config_defence.cpp).
std::vector<std::string> readNameservers(const Reader& r, const Setting& v);
void readState(const Reader& r, const Setting& s, StateConfig& out);  // config_state.cpp

}  // namespace subproxy::config_detail
