// The Cyrus SASL application file (<sasl_config_dir>/<sasl_service>.conf) as Cyrus reads it,
// for what subproxy must know about the backend behind Cyrus: which files it opens.  No Cyrus
// calls here (pure; unit-tested).
#pragma once
#include <map>
#include <optional>
#include <string>

namespace subproxy::sasl {

struct CyrusOption {
    std::string value;
    int line = 0;  // 0: not in the file (Cyrus' built-in default)
};
using CyrusOptions = std::map<std::string, CyrusOption>;

std::string cyrusFilePath(const std::string& configDir, const std::string& service);

// "key: value" lines (Cyrus lib/config.c); '#' starts a comment.  A missing or unreadable
// file gives no options, as Cyrus then runs on its defaults.
CyrusOptions readCyrusFile(const std::string& path);

// `key`'s value, or `fallback` (line 0) when the file does not set it or leaves it empty, as
// Cyrus' plugins do.
CyrusOption cyrusOption(const CyrusOptions& options, const std::string& key, const std::string& fallback = {});

// The sasldb file passwords are checked against, or nullopt when sasldb is not the password
// store (pwcheck_method without auxprop, or auxprop_plugin naming other plugins only).
std::optional<CyrusOption> sasldbFile(const CyrusOptions& options);

}  // namespace subproxy::sasl
