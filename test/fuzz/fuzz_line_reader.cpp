// LineReader: the same results whatever the chunking, Line never holds CR/LF/NUL, memory
// stays bounded, and the reader agrees with an independent reference model.
// Input: byte 0 picks the limit, bytes 1-2 seed the chunking, the rest is the stream.
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "wire/line_reader.h"

using namespace subproxy;

namespace {

struct Out {
    LineResult::Status status;
    std::string line;
    bool operator==(const Out& o) const { return status == o.status && line == o.line; }
};

std::vector<Out> drain(LineReader& r, std::size_t limit, std::vector<Out>& out) {
    while (true) {
        LineResult res = r.next();
        if (res.status == LineResult::Status::NeedMore) {
            break;
        }
        if (res.status == LineResult::Status::Line) {
            FUZZ_CHECK(res.line.find_first_of(std::string("\r\n\0", 3)) == std::string::npos,
                       "a Line never contains CR, LF or NUL");
            FUZZ_CHECK(res.line.size() <= limit, "a Line is never longer than the limit");
        } else {
            FUZZ_CHECK(res.line.empty(), "TooLong/BadEnding carry no text");
        }
        out.push_back({res.status, std::move(res.line)});
    }
    // Bounded: at most limit + the last chunk (+1 for a held CR) stays buffered.
    return out;
}

// Reference: split the whole stream at CRLF; a complete line is TooLong when longer than
// limit, BadEnding when it holds CR/LF/NUL, else Line.
std::vector<Out> reference(std::string_view s, std::size_t limit) {
    std::vector<Out> out;
    std::size_t start = 0;
    while (true) {
        const std::size_t crlf = s.find("\r\n", start);
        if (crlf == std::string_view::npos) {
            break;
        }
        const std::string_view line = s.substr(start, crlf - start);
        if (line.size() > limit) {
            out.push_back({LineResult::Status::TooLong, {}});
        } else if (line.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
            out.push_back({LineResult::Status::BadEnding, {}});
        } else {
            out.push_back({LineResult::Status::Line, std::string(line)});
        }
        start = crlf + 2;
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 3) {
        return 0;
    }
    const std::size_t limit = data[0] % 64 + 1;
    const std::uint64_t seed = data[1] | (data[2] << 8);
    const std::string_view stream(reinterpret_cast<const char*>(data) + 3, size - 3);

    LineReader whole(limit);
    whole.append(stream);
    std::vector<Out> a;
    drain(whole, limit, a);

    LineReader pieces(limit);
    std::vector<Out> b;
    fuzz::Splitter split(seed);
    std::size_t pos = 0;
    while (pos < stream.size()) {
        const std::size_t n = split.next(stream.size() - pos);
        pieces.append(stream.substr(pos, n));
        pos += n;
        drain(pieces, limit, b);
        FUZZ_CHECK(pieces.buffered() <= limit + n + 2, "buffer bounded by limit plus one read");
    }

    FUZZ_CHECK(a == b, "same lines whole or chunked");
    const std::vector<Out> ref = reference(stream, limit);
    if (!(a == ref)) {
        std::fprintf(stderr, "limit=%zu stream=%s\n", limit, fuzz::escape(stream).c_str());
        for (std::size_t i = 0; i < std::max(a.size(), ref.size()); ++i) {
            std::fprintf(stderr, "  #%zu got=%d:%s ref=%d:%s\n", i, i < a.size() ? int(a[i].status) : -1,
                         i < a.size() ? fuzz::escape(a[i].line).c_str() : "", i < ref.size() ? int(ref[i].status) : -1,
                         i < ref.size() ? fuzz::escape(ref[i].line).c_str() : "");
        }
    }
    FUZZ_CHECK(a == ref, "reader agrees with the CRLF reference model");

    // takeBuffered returns exactly the unconsumed tail (what follows the last CRLF) when the
    // reader never started discarding.
    return 0;
}
