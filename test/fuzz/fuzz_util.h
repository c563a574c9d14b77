// Shared helpers for the libFuzzer targets (see README.md).
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

// An invariant check that survives -DNDEBUG and names the broken rule.
#define FUZZ_CHECK(cond, what)                                                             \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            std::fprintf(stderr, "\nINVARIANT FAILED: %s\n  (%s) at %s:%d\n", what, #cond, \
                         __FILE__, __LINE__);                                              \
            std::abort();                                                                  \
        }                                                                                  \
    } while (0)

namespace fuzz {

inline std::string escape(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += static_cast<char>(c);
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        }
    }
    return out;
}

// Deterministic chunk sizes derived from a seed taken from the input itself, so a crash
// reproduces from the input file alone.
class Splitter {
public:
    explicit Splitter(std::uint64_t seed) : state_(seed * 6364136223846793005ull + 1442695040888963407ull) {}
    std::size_t next(std::size_t remaining) {
        state_ = state_ * 6364136223846793005ull + 1442695040888963407ull;
        const std::uint64_t r = state_ >> 33;
        // Mostly tiny chunks (split CRLFs, dots), sometimes big ones.
        std::size_t n = (r & 3) == 0 ? (r >> 2) % 64 + 1 : (r >> 2) % 4 + 1;
        return n < remaining ? n : remaining;
    }

private:
    std::uint64_t state_;
};

}  // namespace fuzz
