// xtext encoding for XCLIENT attribute values (RFC 3461 §4).
#include "xtext.h"

namespace subproxy {

std::string encodeXtext(std::string_view value) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        const auto byte = static_cast<unsigned char>(c);
        // '+' starts an escape and '=' separates XCLIENT name=value, so both must be escaped
        // along with SP and controls, which would split the command line.
        if (byte < 33 || byte > 126 || byte == '+' || byte == '=') {
            out.push_back('+');
            out.push_back(kHex[byte >> 4]);
            out.push_back(kHex[byte & 0x0f]);
        } else {
            out.push_back(c);
        }
    }
    return out;
}

}  // namespace subproxy
