// Strict base64: the decoder accepts only what encodeBase64 could have produced (canonical
// padding, zero trailing bits), so there is exactly one encoding per payload and no lenient
// corner for an attacker to aim at (Exim CVE-2018-6789).
#include "wire/base64.h"

#include <array>
#include <cstdint>

namespace subproxy {

namespace {

constexpr char kAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr int kInvalid = -1;

// Reverse table built once; -1 for every byte outside the alphabet (including '=').
const std::array<int, 256>& decodeTable() {
    static const std::array<int, 256> table = [] {
        std::array<int, 256> t{};
        t.fill(kInvalid);
        for (int i = 0; i < 64; ++i) {
            t[static_cast<unsigned char>(kAlphabet[i])] = i;
        }
        return t;
    }();
    return table;
}

// Number of trailing '=' (0..2), or -1 when the padding is malformed.
int paddingCount(std::string_view text) {
    int pad = 0;
    for (std::size_t i = text.size(); i > 0 && text[i - 1] == '='; --i) {
        ++pad;
    }
    return pad <= 2 ? pad : -1;
}

}  // namespace

std::string encodeBase64(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const std::uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                                (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                                static_cast<unsigned char>(bytes[i + 2]);
        out.push_back(kAlphabet[(v >> 18) & 63]);
        out.push_back(kAlphabet[(v >> 12) & 63]);
        out.push_back(kAlphabet[(v >> 6) & 63]);
        out.push_back(kAlphabet[v & 63]);
    }
    const std::size_t rest = bytes.size() - i;
    if (rest > 0) {
        std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
        if (rest == 2) {
            v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
        }
        out.push_back(kAlphabet[(v >> 18) & 63]);
        out.push_back(kAlphabet[(v >> 12) & 63]);
        out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
        out.push_back('=');
    }
    return out;
}

std::optional<std::string> decodeBase64(std::string_view text) {
    if (text.size() % 4 != 0) {
        return std::nullopt;
    }
    const int pad = paddingCount(text);
    if (pad < 0) {
        return std::nullopt;
    }
    const auto& table = decodeTable();
    const std::size_t dataChars = text.size() - static_cast<std::size_t>(pad);
    std::string out;
    out.reserve(text.size() / 4 * 3);
    std::uint32_t acc = 0;
    int bits = 0;
    // Every character before the padding must be in the alphabet: '=' in the middle, spaces
    // and CR/LF all land on kInvalid here.
    for (std::size_t i = 0; i < dataChars; ++i) {
        const int v = table[static_cast<unsigned char>(text[i])];
        if (v == kInvalid) {
            return std::nullopt;
        }
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xff));
        }
    }
    // Leftover bits must be zero, else two inputs would decode to the same bytes.
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
        return std::nullopt;
    }
    return out;
}

}  // namespace subproxy
