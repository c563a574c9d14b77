// MigrationReport state file (version 2, and version 1 converted): parse() of any text returns a
// report or an error (never crashes); parse(serialize(r)) reproduces r; the bounds hold; a few
// submissions recorded on top (with a clock that may step back or jump days) keep the bounds,
// count into the totals and still round-trip; every rendering runs; escapeField round-trips.
//
// Input: byte 0 = options (bit 7: prepend a magic line, bit 6: version 1 rather than 2,
// bits 3-5: history_days - 1, bits 0-2: max_entries - 1); byte 1 = submissions to record
// (low 3 bits), each taking 3 bytes from the end of the input; the rest is the file text.
#include <string>

#include "fuzz_util.h"
#include "ops/migration_report.h"

using namespace subproxy;

namespace {

void checkRoundTrip(const MigrationReport& r, const MigrationLimits& limits) {
    const std::string s1 = r.serialize();
    std::string e2;
    const auto r2 = MigrationReport::parse(s1, limits, &e2);
    if (!r2) std::fprintf(stderr, "%s\n%s\n", e2.c_str(), fuzz::escape(s1).c_str());
    FUZZ_CHECK(r2.has_value(), "our own state file parses");
    const std::string s2 = r2->serialize();
    if (s1 != s2) std::fprintf(stderr, "s1=%s\ns2=%s\n", fuzz::escape(s1).c_str(), fuzz::escape(s2).c_str());
    FUZZ_CHECK(s1 == s2, "parse(serialize(r)) reproduces r");
    FUZZ_CHECK(r2->records() == r.records(), "same records");
    FUZZ_CHECK(r2->history() == r.history(), "same history");
    FUZZ_CHECK(r2->totals() == r.totals(), "same totals");
    FUZZ_CHECK(!r2->dirty(), "a version 2 file loads clean");
}

void render(const MigrationReport& r, std::int64_t now, std::uint8_t options) {
    MigrationQuery q;
    q.format = static_cast<MigrationFormat>(options % 3);
    q.history = options & 4;
    if (options & 8) q.filter.port = 25;
    if (options & 16) q.filter.since = now - 86400;
    if ((options & 32) && !q.history) q.filter.notSince = now - 3 * 86400;
    (void)r.render(q, now);
    (void)r.recordsText({});
    (void)r.historyText({}, now);
    const auto rows = r.historyRows(q.filter, now);
    FUZZ_CHECK(rows.size() <= static_cast<std::size_t>(r.limits().historyDays) * (r.history().size() + 1),
               "history table bounded by history_days");
    (void)renderMigrationPrometheus(r.portFigures(now));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) {
        return 0;
    }
    const MigrationLimits limits{static_cast<std::size_t>(data[0] % 8 + 1), (data[0] >> 3) % 8 + 1};
    const std::size_t submissions = std::min<std::size_t>(data[1] % 8, (size - 2) / 3);
    const std::uint8_t* script = data + size - 3 * submissions;
    std::string text(reinterpret_cast<const char*>(data) + 2, size - 2 - 3 * submissions);
    // Half the time, give it a right magic line so the line parsers are reached.
    if (data[0] & 0x80) text = std::string(data[0] & 0x40 ? "subproxy-migration 1\n" : "subproxy-migration 2\n") + text;

    std::string error;
    auto r = MigrationReport::parse(text, limits, &error);
    if (!r) {
        FUZZ_CHECK(!error.empty(), "a refused file says why");
    } else {
        FUZZ_CHECK(r->records().size() <= limits.maxEntries, "records bounded");
        checkRoundTrip(*r, limits);
        render(*r, 1795305600, data[1]);
        // Submissions on top, a clock from 2026-11-22 moving by -128..127 hours at a step.
        std::int64_t now = 1795305600;
        const std::uint64_t before = r->total();
        for (std::size_t i = 0; i < submissions; ++i) {
            const std::uint8_t* s = script + 3 * i;
            static const int kPorts[] = {25, 465, 587, 0};
            now += static_cast<std::int8_t>(s[2]) * 3600;
            r->record({s[0] & 4 ? "" : "u" + std::to_string(s[0] % 4), "192.0.2." + std::to_string(s[1] % 3),
                       kPorts[s[1] >> 6], s[0] & 8 ? "PLAIN" : "", s[0] & 16 ? "TLSv1.3" : ""},
                      now);
            FUZZ_CHECK(r->dirty(), "a submission marks the report for writing");
            FUZZ_CHECK(r->records().size() <= limits.maxEntries, "records bounded after record()");
            // Least recently seen goes first: the record just bumped only when all others are newer.
            if (r->records().count({s[0] & 4 ? "" : "u" + std::to_string(s[0] % 4),
                                    "192.0.2." + std::to_string(s[1] % 3), kPorts[s[1] >> 6]}) == 0) {
                for (const auto& [key, rec] : r->records()) {
                    FUZZ_CHECK(rec.last >= now, "eviction takes the least recently seen");
                }
            }
            for (const auto& [dayPort, d] : r->history()) {
                FUZZ_CHECK(dayPort.first > utcDay(now) - limits.historyDays, "history bounded by history_days");
                FUZZ_CHECK(dayPort.first <= utcDay(now) + 1, "no day after today (a wrong clock is forgotten)");
            }
        }
        FUZZ_CHECK(r->total() == before + submissions, "every submission counts in the totals");
        if (submissions > 0) {
            checkRoundTrip(*r, limits);
            render(*r, now, data[1] >> 3);
        }
    }
    const std::string field(reinterpret_cast<const char*>(data) + 2, size - 2);
    const std::string esc = escapeField(field);
    for (unsigned char c : esc) {
        FUZZ_CHECK(c > 0x20 && c < 0x7f, "escaped field is one printable word");
    }
    const auto un = unescapeField(esc);
    FUZZ_CHECK(un && *un == field, "unescapeField(escapeField(x)) == x");
    return 0;
}
