// xtext (RFC 3461 §4): the encoding Postfix XCLIENT attribute values use.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace subproxy {

// Postfix smtpd refuses a whole XCLIENT command ("501 5.5.4 Error: attribute value too long")
// when one attribute value is longer than this, counted as sent, i.e. after xtext encoding.
constexpr std::size_t kXclientMaxValue = 255;

// Every byte outside '!'..'~', and '+' and '=', becomes "+XX" (upper-case hex).
std::string encodeXtext(std::string_view value);

// encodeXtext(value).size(), without building it.
std::size_t xtextLength(std::string_view value);

// The longest leading part of `value` whose xtext form fits in `limit` octets, encoded.  Whole
// escapes only (never "+3" of "+3D"), and never half a UTF-8 sequence: a cut HELO stays text.
std::string encodeXtextPrefix(std::string_view value, std::size_t limit);

}  // namespace subproxy
