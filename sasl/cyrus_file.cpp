#include "cyrus_file.h"

#include <fstream>
#include <sstream>

namespace subproxy::sasl {

namespace {

// Cyrus' own default (Debian builds with SASL_DB_PATH /etc/sasldb2).
constexpr const char* kDefaultSasldb = "/etc/sasldb2";

bool listHas(const std::string& list, const std::string& word) {
    std::istringstream words(list);  // Cyrus splits these lists on white space
    std::string w;
    while (words >> w) {
        if (w == word) {
            return true;
        }
    }
    return false;
}

}  // namespace

std::string cyrusFilePath(const std::string& configDir, const std::string& service) {
    return configDir + "/" + service + ".conf";
}

CyrusOptions readCyrusFile(const std::string& path) {
    CyrusOptions options;
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

CyrusOption cyrusOption(const CyrusOptions& options, const std::string& key, const std::string& fallback) {
    const auto it = options.find(key);
    return it == options.end() || it->second.value.empty() ? CyrusOption{fallback, 0} : it->second;
}

std::optional<CyrusOption> sasldbFile(const CyrusOptions& options) {
    // Cyrus' defaults: pwcheck_method auxprop, and every auxprop plugin installed.
    const std::string pwcheck = cyrusOption(options, "pwcheck_method", "auxprop").value;
    const std::string plugins = cyrusOption(options, "auxprop_plugin", "sasldb").value;
    if (!listHas(pwcheck, "auxprop") || !listHas(plugins, "sasldb")) {
        return std::nullopt;
    }
    return cyrusOption(options, "sasldb_path", kDefaultSasldb);
}

}  // namespace subproxy::sasl
