// xtext (RFC 3461 §4): the encoding Postfix XCLIENT attribute values use.
#pragma once
#include <string>
#include <string_view>

namespace subproxy {

// Every byte outside '!'..'~', and '+' and '=', becomes "+XX" (upper-case hex).
std::string encodeXtext(std::string_view value);

}  // namespace subproxy
