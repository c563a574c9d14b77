// User names: checks at AUTH and the one spelling of an account.  See identity.h.
#include "wire/identity.h"

#include "ops/config.h"
#include "wire/text_util.h"
#include "wire/xtext.h"

namespace subproxy {

namespace {

bool hasControlCharacters(std::string_view s) {
    for (char c : s) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f) {
            return true;
        }
    }
    return false;
}

// Cyrus' canonuser strips isspace(); every other white-space byte is a control character,
// refused before a name gets here, so spaces are all that is left to strip.
std::string_view trimBlanks(std::string_view s) {
    while (!s.empty() && s.front() == ' ') {
        s.remove_prefix(1);
    }
    while (!s.empty() && s.back() == ' ') {
        s.remove_suffix(1);
    }
    return s;
}

}  // namespace

std::string defaultRealm(const Config& config) {
    return config.auth.saslRealm.empty() ? config.hostname : config.auth.saslRealm;
}

NameCheck checkUserName(std::string_view name, std::string_view realm, bool xclientLogin) {
    if (hasControlCharacters(name)) {
        return NameCheck::ControlCharacters;
    }
    if (name.size() > kMaxUserName ||
        (xclientLogin && xtextLength(canonicalUser(name, realm)) > kXclientMaxValue)) {
        return NameCheck::TooLong;
    }
    return NameCheck::Ok;
}

NameCheck checkAuthzid(std::string_view authzid) {
    return hasControlCharacters(authzid) ? NameCheck::ControlCharacters : NameCheck::Ok;
}

std::string canonicalUser(std::string_view name, std::string_view realm) {
    name = trimBlanks(name);
    const std::size_t at = name.find('@');
    if (at != std::string_view::npos && !realm.empty() && iequals(name.substr(at + 1), realm)) {
        name = name.substr(0, at);
    }
    return std::string(name);
}

std::string userKey(std::string_view name, std::string_view realm) {
    return toLower(canonicalUser(name, realm));
}

}  // namespace subproxy
