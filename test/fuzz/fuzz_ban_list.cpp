// BanList state file parser: load() of any text never crashes, and what it keeps is a fixed
// point: serialise -> load into a fresh list -> serialise gives the same text with no bad lines.
// Memory stays bounded by maxTracked.
#include <string>
#include <string_view>

#include "ban_list.h"
#include "fuzz_util.h"

using namespace subproxy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) {
        return 0;
    }
    GuardPolicy policy;
    policy.maxTracked = data[0] % 8 + 1;
    policy.ipv6Prefix = 32 + data[1] % 97;  // 32..128
    const std::int64_t now = 1700000000;
    const std::string_view text(reinterpret_cast<const char*>(data) + 2, size - 2);

    BanList list(policy);
    list.load(text, now);
    FUZZ_CHECK(list.trackedAddresses() <= policy.maxTracked, "addresses bounded");
    FUZZ_CHECK(list.trackedUsers() <= policy.maxTracked, "users bounded");

    const std::string s1 = list.serialise(now);
    BanList again(policy);
    const std::size_t bad = again.load(s1, now);
    if (bad != 0) std::fprintf(stderr, "state:\n%s\n", fuzz::escape(s1).c_str());
    FUZZ_CHECK(bad == 0, "our own state file loads without bad lines");
    const std::string s2 = again.serialise(now);
    if (s1 != s2) std::fprintf(stderr, "s1:\n%s\ns2:\n%s\n", fuzz::escape(s1).c_str(), fuzz::escape(s2).c_str());
    FUZZ_CHECK(s1 == s2, "serialise/load is a fixed point");

    // Every ban it reports is for a key lift() can find again.
    for (const auto& b : list.bans(now)) {
        FUZZ_CHECK(b.until > now, "only live bans are listed");
        BanList copy(policy);
        copy.load(s1, now);
        FUZZ_CHECK(!copy.lift(b.key, now).empty(), "a listed ban can be lifted by its key");
    }

    // percent encoding round trip on the raw text
    std::string dec;
    FUZZ_CHECK(percentDecode(percentEncode(text), dec) && dec == text, "percentDecode(percentEncode(x)) == x");
    const std::string enc = percentEncode(text);
    for (unsigned char c : enc) {
        FUZZ_CHECK(c > 0x20 && c < 0x7f, "percentEncode output is one printable word");
    }
    return 0;
}
