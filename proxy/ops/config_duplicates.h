// Internal to the configuration reader (config.cpp): libconfig's "duplicate setting name" told
// in full.
#pragma once
#include <optional>
#include <string>

namespace subproxy::config_detail {

// "duplicate setting 'upstream.port' (already set at line 5); remove one of them" for the first
// setting `text` sets twice in one group; nullopt when it sets none twice.
std::optional<std::string> duplicateSettingMessage(const std::string& text);

}  // namespace subproxy::config_detail
