// Decoding of the SASL PLAIN message (RFC 4616) once base64 is undone.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace subproxy {

struct PlainCredentials {
    std::string authzid;   // may be empty
    std::string authcid;   // never empty from parsePlain
    std::string password;  // never empty from parsePlain
};

// `[authzid] NUL authcid NUL passwd` cut at its two NULs, fields not checked: nullopt unless
// there are exactly two.  For looking at the names before deciding what is wrong with them.
std::optional<PlainCredentials> splitPlain(std::string_view decoded);

// `[authzid] NUL authcid NUL passwd`: exactly two NULs, non-empty authcid and password, each
// field at most 255 octets of valid UTF-8.  nullopt otherwise.  An authzid that differs from
// the authcid is returned as is; the caller decides (we refuse it: no proxy authorization).
std::optional<PlainCredentials> parsePlain(std::string_view decoded);

// Builds the PLAIN message for `user`/`password` (empty authzid).
std::string buildPlain(std::string_view user, std::string_view password);

}  // namespace subproxy
