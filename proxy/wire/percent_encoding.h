// Percent-encoding for the words of the state files (the guard's and the migration report's):
// every byte outside '!'..'~', and '%' itself, becomes "%XX", so that any login or address is
// one space-free, printable field.
#pragma once
#include <string>
#include <string_view>

namespace subproxy {

std::string percentEncode(std::string_view raw);
// Upper- or lower-case hex; false on a '%' not followed by two hex digits.
bool percentDecode(std::string_view text, std::string& out);

}  // namespace subproxy
