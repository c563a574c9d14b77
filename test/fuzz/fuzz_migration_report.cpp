// MigrationReport state file parser: parse() of any text returns a report or an error (never
// crashes), and parse(serialize(r)) reproduces r; escapeField/unescapeField round-trip.
#include <string>

#include "fuzz_util.h"
#include "migration_report.h"

using namespace subproxy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) {
        return 0;
    }
    const std::size_t maxEntries = data[0] % 8 + 1;
    std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
    // Half the time, give it the right magic line so the entry parser is reached.
    if (data[0] & 0x80) text = "subproxy-migration 1\n" + text;

    std::string error;
    const auto r = MigrationReport::parse(text, maxEntries, &error);
    if (!r) {
        FUZZ_CHECK(!error.empty(), "a refused file says why");
    } else {
        FUZZ_CHECK(r->users().size() <= maxEntries && r->addresses().size() <= maxEntries, "tables bounded");
        const std::string s1 = r->serialize();
        std::string e2;
        const auto r2 = MigrationReport::parse(s1, maxEntries, &e2);
        if (!r2) std::fprintf(stderr, "%s\n%s\n", e2.c_str(), fuzz::escape(s1).c_str());
        FUZZ_CHECK(r2.has_value(), "our own state file parses");
        const std::string s2 = r2->serialize();
        if (s1 != s2) std::fprintf(stderr, "s1=%s\ns2=%s\n", fuzz::escape(s1).c_str(), fuzz::escape(s2).c_str());
        FUZZ_CHECK(s1 == s2, "parse(serialize(r)) reproduces r");
        FUZZ_CHECK(r2->users() .size() == r->users().size(), "same users");
        (void)r->table();
        (void)r->json();
    }
    const std::string field(reinterpret_cast<const char*>(data) + 1, size - 1);
    const std::string esc = escapeField(field);
    for (unsigned char c : esc) {
        FUZZ_CHECK(c > 0x20 && c < 0x7f, "escaped field is one printable word");
    }
    const auto un = unescapeField(esc);
    FUZZ_CHECK(un && *un == field, "unescapeField(escapeField(x)) == x");
    return 0;
}
