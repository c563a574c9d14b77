// SASL PLAIN parsing/building and xtext encoding.
#include <string>
#include <string_view>

#include "wire/base64.h"
#include "fuzz_util.h"
#include "wire/sasl_payload.h"
#include "wire/xtext.h"

using namespace subproxy;

namespace {

// Independent strict UTF-8 check (decodes code points): no overlong forms, no surrogates,
// nothing above U+10FFFF, no truncated sequences.
bool validUtf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        int n;
        std::uint32_t cp;
        if (c < 0x80) { n = 0; cp = c; }
        else if ((c & 0xe0) == 0xc0) { n = 1; cp = c & 0x1f; }
        else if ((c & 0xf0) == 0xe0) { n = 2; cp = c & 0x0f; }
        else if ((c & 0xf8) == 0xf0) { n = 3; cp = c & 0x07; }
        else return false;
        if (i + static_cast<std::size_t>(n) >= s.size() && n > 0) return false;
        for (int k = 1; k <= n; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
            if ((cc & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        static const std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
        if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += static_cast<std::size_t>(n) + 1;
    }
    return true;
}

// xtext decoding per RFC 3461 §4, to check the encoder.
bool decodeXtext(std::string_view s, std::string& out) {
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    out.clear();
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '+') {
            if (i + 2 >= s.size()) return false;
            const int h = hex(s[i + 1]), l = hex(s[i + 2]);
            if (h < 0 || l < 0) return false;
            out += static_cast<char>(h * 16 + l);
            i += 2;
        } else if (c < '!' || c > '~' || c == '=') {
            return false;
        } else {
            out += static_cast<char>(c);
        }
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);

    // xtext: printable output, decodes back.
    const std::string x = encodeXtext(in);
    for (unsigned char c : x) {
        FUZZ_CHECK(c >= '!' && c <= '~' && c != '=', "xtext output is xchar or '+'");
    }
    std::string back;
    FUZZ_CHECK(decodeXtext(x, back), "xtext output is well-formed");
    FUZZ_CHECK(back == in, "xtext round trip");
    FUZZ_CHECK(xtextLength(in) == x.size(), "xtextLength is the encoded size");

    // Cut to a limit (XCLIENT values): a leading part of the full encoding, whole escapes only,
    // within the limit, and all of it when it fits.
    const std::size_t limit = size % 300;
    const std::string prefix = encodeXtextPrefix(in, limit);
    FUZZ_CHECK(prefix.size() <= limit, "xtext prefix within the limit");
    FUZZ_CHECK(x.compare(0, prefix.size(), prefix) == 0, "xtext prefix is a prefix of the encoding");
    std::string prefixBack;
    FUZZ_CHECK(decodeXtext(prefix, prefixBack), "xtext prefix has whole escapes");
    FUZZ_CHECK(x.size() > limit || prefix == x, "xtext prefix keeps a value that fits");

    // PLAIN: whatever is accepted satisfies the documented contract.
    const auto creds = parsePlain(in);
    if (creds) {
        FUZZ_CHECK(!creds->authcid.empty() && !creds->password.empty(), "authcid and password non-empty");
        for (const std::string* f : {&creds->authzid, &creds->authcid, &creds->password}) {
            FUZZ_CHECK(f->size() <= 255, "field at most 255 octets");
            FUZZ_CHECK(f->find('\0') == std::string::npos, "no NUL inside a field");
            FUZZ_CHECK(validUtf8(*f), "field is valid UTF-8");
        }
        const std::string rebuilt = creds->authzid + std::string(1, '\0') + creds->authcid +
                                    std::string(1, '\0') + creds->password;
        FUZZ_CHECK(rebuilt == in, "PLAIN message is exactly authzid NUL authcid NUL passwd");
    }
    // Differential: an independent reading of RFC 4616 + the header's contract.
    {
        const std::size_t a = in.find('\0');
        const std::size_t b = a == std::string_view::npos ? a : in.find('\0', a + 1);
        bool ok = b != std::string_view::npos && in.find('\0', b + 1) == std::string_view::npos;
        if (ok) {
            const std::string_view z = in.substr(0, a), c = in.substr(a + 1, b - a - 1), p = in.substr(b + 1);
            ok = !c.empty() && !p.empty();
            for (std::string_view f : {z, c, p}) {
                ok = ok && f.size() <= 255 && validUtf8(f);
            }
        }
        FUZZ_CHECK(ok == creds.has_value(), "parsePlain accepts exactly the valid PLAIN messages");
    }
    // buildPlain(user, pass) parses back to the same credentials when they are valid.
    const std::size_t cut = size ? data[0] % (size + 1) : 0;
    const std::string_view user = in.substr(0, cut), pass = in.substr(cut);
    const std::string built = buildPlain(user, pass);
    const auto again = parsePlain(built);
    if (again) {
        FUZZ_CHECK(again->authzid.empty() && again->authcid == user && again->password == pass,
                   "parsePlain(buildPlain(u, p)) == (u, p)");
    }
    return 0;
}
