// Shared by the configuration tests: the smallest valid configuration, and the error (if any)
// that a configuration text produces.
#pragma once
#include <string>

#include "ops/config.h"

namespace subproxy::testing {

inline const std::string kMinimalConfig =
    "listen = ( { address = \"0.0.0.0\"; port = 10025; } );\n"
    "tls = { cert = \"/c.pem\"; key = \"/k.pem\"; };\n";

// The ConfigError message for `text` read as file `name`, or "" when it parses.
inline std::string configError(const std::string& text, const std::string& name = "test.conf") {
    try {
        parseConfig(text, name);
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

}  // namespace subproxy::testing
