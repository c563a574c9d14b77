// xtext encoding for XCLIENT attribute values (RFC 3461 §4).
#include "wire/xtext.h"

namespace subproxy {

namespace {

// '+' starts an escape and '=' separates XCLIENT name=value, so both must be escaped along
// with SP and controls, which would split the command line.
bool needsEscape(unsigned char byte) { return byte < 33 || byte > 126 || byte == '+' || byte == '='; }

bool isUtf8Continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

}  // namespace

std::string encodeXtext(std::string_view value) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        const auto byte = static_cast<unsigned char>(c);
        if (needsEscape(byte)) {
            out.push_back('+');
            out.push_back(kHex[byte >> 4]);
            out.push_back(kHex[byte & 0x0f]);
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::size_t xtextLength(std::string_view value) {
    std::size_t n = 0;
    for (char c : value) {
        n += needsEscape(static_cast<unsigned char>(c)) ? 3 : 1;
    }
    return n;
}

std::string encodeXtextPrefix(std::string_view value, std::size_t limit) {
    // Cut the raw value, not the encoded text: every escape is then whole by construction.
    std::size_t keep = 0;
    std::size_t encoded = 0;
    while (keep < value.size()) {
        const std::size_t width = needsEscape(static_cast<unsigned char>(value[keep])) ? 3 : 1;
        if (encoded + width > limit) {
            break;
        }
        encoded += width;
        ++keep;
    }
    if (keep < value.size()) {
        // Back up to the start of a character if the cut fell inside a UTF-8 sequence (at most
        // three continuation bytes; a longer run is not UTF-8 and is cut where it fell).
        std::size_t back = keep;
        while (back > 0 && keep - back < 3 && isUtf8Continuation(value[back])) {
            --back;
        }
        if (!isUtf8Continuation(value[back])) {
            keep = back;
        }
    }
    return encodeXtext(value.substr(0, keep));
}

}  // namespace subproxy
