// Strict base64 (RFC 4648 §4) for SASL payloads (RFC 4954 §4): no whitespace, padding only at
// the end, no characters outside the alphabet.  Lenient decoders were an RCE source (Exim
// CVE-2018-6789), so this one refuses anything that is not canonical enough to round-trip.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace subproxy {

std::string encodeBase64(std::string_view bytes);

// nullopt when `text` is not valid base64.  The empty string decodes to the empty string.
std::optional<std::string> decodeBase64(std::string_view text);

}  // namespace subproxy
