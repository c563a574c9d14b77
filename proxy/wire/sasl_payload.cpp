// SASL PLAIN message (RFC 4616): strict split and UTF-8 check before anything reaches Cyrus or
// the MSA.
#include "wire/sasl_payload.h"

#include <cstdint>

namespace subproxy {

namespace {

constexpr std::size_t kMaxFieldOctets = 255;

// Length of the UTF-8 sequence starting at `lead` (1..4), or 0 for an invalid lead byte.
// 0xC0/0xC1 and 0xF5.. are never valid leads (overlong or beyond U+10FFFF).
int sequenceLength(unsigned char lead) {
    if (lead < 0x80) {
        return 1;
    }
    if (lead >= 0xC2 && lead <= 0xDF) {
        return 2;
    }
    if (lead >= 0xE0 && lead <= 0xEF) {
        return 3;
    }
    if (lead >= 0xF0 && lead <= 0xF4) {
        return 4;
    }
    return 0;
}

// Second-byte bounds that exclude overlong forms, surrogates and code points > U+10FFFF.
bool secondByteOk(unsigned char lead, unsigned char second) {
    if (lead == 0xE0) {
        return second >= 0xA0 && second <= 0xBF;
    }
    if (lead == 0xED) {
        return second >= 0x80 && second <= 0x9F;
    }
    if (lead == 0xF0) {
        return second >= 0x90 && second <= 0xBF;
    }
    if (lead == 0xF4) {
        return second >= 0x80 && second <= 0x8F;
    }
    return second >= 0x80 && second <= 0xBF;
}

bool isValidUtf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto lead = static_cast<unsigned char>(s[i]);
        const int len = sequenceLength(lead);
        if (len == 0 || i + static_cast<std::size_t>(len) > s.size()) {
            return false;
        }
        if (len > 1 && !secondByteOk(lead, static_cast<unsigned char>(s[i + 1]))) {
            return false;
        }
        for (int k = 2; k < len; ++k) {
            const auto cont = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
            if (cont < 0x80 || cont > 0xBF) {
                return false;
            }
        }
        i += static_cast<std::size_t>(len);
    }
    return true;
}

bool fieldOk(std::string_view field) {
    return field.size() <= kMaxFieldOctets && isValidUtf8(field);
}

}  // namespace

std::optional<PlainCredentials> splitPlain(std::string_view decoded) {
    const std::size_t first = decoded.find('\0');
    if (first == std::string_view::npos) {
        return std::nullopt;
    }
    const std::size_t second = decoded.find('\0', first + 1);
    if (second == std::string_view::npos ||
        decoded.find('\0', second + 1) != std::string_view::npos) {
        return std::nullopt;
    }
    return PlainCredentials{std::string(decoded.substr(0, first)),
                            std::string(decoded.substr(first + 1, second - first - 1)),
                            std::string(decoded.substr(second + 1))};
}

std::optional<PlainCredentials> parsePlain(std::string_view decoded) {
    auto creds = splitPlain(decoded);
    if (!creds || creds->authcid.empty() || creds->password.empty()) {
        return std::nullopt;
    }
    if (!fieldOk(creds->authzid) || !fieldOk(creds->authcid) || !fieldOk(creds->password)) {
        return std::nullopt;
    }
    return creds;
}

std::string buildPlain(std::string_view user, std::string_view password) {
    std::string out;
    out.reserve(user.size() + password.size() + 2);
    out.push_back('\0');
    out.append(user.data(), user.size());
    out.push_back('\0');
    out.append(password.data(), password.size());
    return out;
}

}  // namespace subproxy
