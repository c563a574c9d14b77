// BanList state file parser: load() of any text never crashes, and what it keeps is a fixed
// point: serialise -> load into a fresh list -> serialise gives the same text with no bad lines.
// Memory stays bounded by maxTracked, and loading in pieces at line ends is loading at once.
#include <string>
#include <string_view>

#include "defence/ban_list.h"
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
    const BanList::LoadResult loaded = list.load(text, now);
    FUZZ_CHECK(list.trackedAddresses() <= policy.maxTracked, "addresses bounded");
    FUZZ_CHECK(list.trackedUsers() <= policy.maxTracked, "users bounded");
    FUZZ_CHECK(list.banCount() <= policy.maxTracked, "bans bounded");

    // Fed in pieces at line ends (as the daemon reads the file), the result is the same.
    BanList pieces(policy);
    BanList::LoadResult piecewise;
    std::string_view rest = text;
    for (std::size_t i = 0; !rest.empty(); ++i) {
        const std::size_t nl = rest.find('\n', i % 3 == 0 ? 0 : rest.size() / 2);
        const std::size_t cut = nl == std::string_view::npos ? rest.size() : nl + 1;
        piecewise += pieces.load(rest.substr(0, cut), now);
        rest.remove_prefix(cut);
    }
    FUZZ_CHECK(piecewise.unreadable == loaded.unreadable && piecewise.dropped == loaded.dropped,
               "chunked load counts as one load");

    const std::string s1 = list.serialise(now);
    FUZZ_CHECK(pieces.serialise(now) == s1, "chunked load keeps what one load keeps");
    BanList again(policy);
    const BanList::LoadResult reloaded = again.load(s1, now);
    if (reloaded.unreadable != 0) std::fprintf(stderr, "state:\n%s\n", fuzz::escape(s1).c_str());
    FUZZ_CHECK(reloaded.unreadable == 0, "our own state file loads without bad lines");
    FUZZ_CHECK(reloaded.dropped == 0, "our own state file fits the table it came from");
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
