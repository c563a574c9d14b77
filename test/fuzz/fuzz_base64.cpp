// base64: encode/decode round trip, and the decoder accepts only canonical text (one encoding
// per payload: decode(t) == x implies encode(x) == t).
#include <string>
#include <string_view>

#include "wire/base64.h"
#include "fuzz_util.h"

using namespace subproxy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);

    // 1. Any bytes round-trip through encode/decode.
    const std::string enc = encodeBase64(in);
    FUZZ_CHECK(enc.size() == (size + 2) / 3 * 4, "encoded length is 4*ceil(n/3)");
    for (char c : enc) {
        FUZZ_CHECK((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                       c == '/' || c == '=',
                   "encoder emits only the alphabet and '='");
    }
    const auto dec = decodeBase64(enc);
    FUZZ_CHECK(dec.has_value(), "decoder accepts what the encoder produced");
    FUZZ_CHECK(*dec == in, "decode(encode(x)) == x");

    // 2. The input as base64 text: accepted only when canonical.
    const auto d2 = decodeBase64(in);
    if (d2) {
        FUZZ_CHECK(encodeBase64(*d2) == in, "decoder accepts only the canonical encoding");
        FUZZ_CHECK(d2->size() <= size / 4 * 3, "decoded size bound");
    }
    return 0;
}
