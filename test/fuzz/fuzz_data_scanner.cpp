// DataScanner: chunking-independent; output is canonical CRLF text with every "." line start
// stuffed (so it can never contain the terminator); clean bodies round-trip; the terminator is
// found exactly where the reference says.
// Input: byte 0 = policy + size limit, bytes 1-2 seed the chunking, the rest is the stream.
#include <string>
#include <string_view>

#include "wire/data_scanner.h"
#include "fuzz_util.h"

using namespace subproxy;

namespace {

struct Run {
    std::string out;
    std::size_t consumed = 0;
    bool done = false;
    bool bare = false, nul = false, big = false;
    std::uint64_t size = 0;
};

Run scan(std::string_view s, BareNewline policy, std::uint64_t max, std::uint64_t seed, bool chunked) {
    DataScanner sc(policy, max);
    Run r;
    fuzz::Splitter split(seed);
    std::size_t pos = 0;
    while (pos < s.size() && !r.done) {
        const std::size_t n = chunked ? split.next(s.size() - pos) : s.size() - pos;
        const auto res = sc.feed(s.substr(pos, n), r.out);
        FUZZ_CHECK(res.consumed <= n, "consumed within the chunk");
        if (!res.done) {
            FUZZ_CHECK(res.consumed == n, "all input consumed until the terminator");
        }
        r.consumed += res.consumed;
        r.done = res.done;
        pos += n;
    }
    r.bare = sc.sawBareNewline();
    r.nul = sc.sawNul();
    r.big = sc.tooBig();
    r.size = sc.size();
    return r;
}

// Where CRLF "." CRLF (or "." CRLF at the start) ends the body: index after it, or npos.
std::size_t terminatorEnd(std::string_view s) {
    if (s.substr(0, 3) == ".\r\n") {
        return 3;
    }
    const std::size_t p = s.find("\r\n.\r\n");
    return p == std::string_view::npos ? p : p + 5;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 3) {
        return 0;
    }
    const BareNewline policy = (data[0] & 1) ? BareNewline::Normalize : BareNewline::Reject;
    const std::uint64_t max = (data[0] & 2) ? (data[0] >> 2) : 0;  // 0 = unlimited
    const std::uint64_t seed = data[1] | (data[2] << 8);
    const std::string_view in(reinterpret_cast<const char*>(data) + 3, size - 3);

    const Run whole = scan(in, policy, max, seed, false);
    const Run pieces = scan(in, policy, max, seed, true);
    if (whole.big) {
        // Known, harmless: the size limit is checked per emitted run, so how many bytes before
        // the limit were written depends on chunking (output is discarded anyway).  Require
        // only that one output is a prefix of the other.
        const std::string& a = whole.out.size() < pieces.out.size() ? whole.out : pieces.out;
        const std::string& b = whole.out.size() < pieces.out.size() ? pieces.out : whole.out;
        FUZZ_CHECK(b.compare(0, a.size(), a) == 0, "same output prefix for any chunking (size limit hit)");
    } else {
        FUZZ_CHECK(whole.out == pieces.out, "same output for any chunking");
    }
    FUZZ_CHECK(whole.consumed == pieces.consumed && whole.done == pieces.done, "same end for any chunking");
    FUZZ_CHECK(whole.bare == pieces.bare && whole.nul == pieces.nul && whole.big == pieces.big &&
                   whole.size == pieces.size,
               "same verdict for any chunking");

    // The terminator: only CRLF.CRLF (or ".CRLF" first) ends the body, and the first one does.
    const std::size_t term = terminatorEnd(in);
    FUZZ_CHECK(whole.done == (term != std::string_view::npos), "done iff a real terminator exists");
    if (whole.done) {
        FUZZ_CHECK(whole.consumed == term, "consumed exactly through the first terminator");
    }

    const std::string& out = whole.out;
    // Canonical output: CR only in CRLF, LF only in CRLF, and in Reject mode / clean bodies
    // no NUL.
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (out[i] == '\r') {
            FUZZ_CHECK(i + 1 < out.size() && out[i + 1] == '\n', "no bare CR in output");
        }
        if (out[i] == '\n') {
            FUZZ_CHECK(i > 0 && out[i - 1] == '\r', "no bare LF in output");
        }
        FUZZ_CHECK(out[i] != '\0', "no NUL in output");
    }
    // Every line that starts with "." is stuffed: never a "." line alone, never the terminator.
    std::size_t lineStart = 0;
    while (lineStart < out.size()) {
        std::size_t eol = out.find("\r\n", lineStart);
        const std::string_view line =
            std::string_view(out).substr(lineStart, eol == std::string::npos ? std::string::npos : eol - lineStart);
        FUZZ_CHECK(line != ".", "a lone \".\" line is never emitted");
        if (!line.empty() && line[0] == '.') {
            FUZZ_CHECK(line.size() >= 2 && line[1] == '.', "lines starting with \".\" are stuffed");
        }
        if (eol == std::string::npos) {
            break;
        }
        lineStart = eol + 2;
    }
    FUZZ_CHECK(out.find("\r\n.\r\n") == std::string::npos, "output never contains CRLF.CRLF");
    // What goes upstream is followed by ".\r\n": the body must end at a line boundary when done,
    // or the MSA would see "text.\r\n" (the last line joined with the terminator).
    if (whole.done && !out.empty() && !whole.bare && !whole.nul && !whole.big) {
        FUZZ_CHECK(out.size() >= 2 && out.compare(out.size() - 2, 2, "\r\n") == 0,
                   "a complete clean body ends with CRLF");
    }
    // Reject mode: a bare newline stops output; what was written before it has no bare newline
    // by the check above.  A clean, well-formed body round-trips byte-exact.
    if (whole.done && !whole.bare && !whole.nul && !whole.big && policy == BareNewline::Reject) {
        const std::string_view body = in.substr(0, term == 3 ? 0 : term - 3);  // through the CRLF before "."
        // Well-formed: the client stuffed exactly the lines starting with "." (".x" alone,
        // an unstuffed line, is legal but not canonical, so it does not round-trip).
        bool canonical = true;
        for (std::size_t ls = 0; ls < body.size();) {
            if (body[ls] == '.' && (ls + 1 >= body.size() || body[ls + 1] != '.')) {
                canonical = false;
            }
            const std::size_t e = body.find("\r\n", ls);
            if (e == std::string_view::npos) break;
            ls = e + 2;
        }
        if (canonical) {
            FUZZ_CHECK(out == body, "clean, canonically stuffed body round-trips byte-exact");
        }
    }
    if (max != 0 && !whole.big) {
        FUZZ_CHECK(whole.size <= max, "size within the limit unless tooBig");
    }
    return 0;
}
