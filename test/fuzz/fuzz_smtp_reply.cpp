// ReplyParser and formatReply.  Lines (split at '\n', CR-free) are fed one at a time; every
// Complete reply has a valid code and re-parses from its own wire() form to the same Reply;
// formatReply output is well-formed wire text whatever the text holds.
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "wire/smtp_reply.h"

using namespace subproxy;

namespace {

std::vector<std::string> splitCrlf(const std::string& wire) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < wire.size()) {
        const std::size_t e = wire.find("\r\n", start);
        FUZZ_CHECK(e != std::string::npos, "wire form ends with CRLF");
        lines.push_back(wire.substr(start, e - start));
        start = e + 2;
    }
    return lines;
}

void checkWire(const std::string& wire, int code, std::size_t expectedLines) {
    const std::vector<std::string> lines = splitCrlf(wire);
    FUZZ_CHECK(lines.size() == expectedLines, "one wire line per reply line");
    const std::string code3 = std::to_string(code);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const std::string& l = lines[i];
        FUZZ_CHECK(l.find_first_of("\r\n") == std::string::npos, "no CR/LF inside a wire line");
        FUZZ_CHECK(l.compare(0, 3, code3) == 0, "every line carries the code");
        if (i + 1 < lines.size()) {
            FUZZ_CHECK(l.size() >= 4 && l[3] == '-', "continuation lines use NNN-");
        } else {
            FUZZ_CHECK(l.size() == 3 || l[3] == ' ', "the last line uses NNN<SP> or NNN");
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string in(reinterpret_cast<const char*>(data), size);

    ReplyParser parser;
    std::size_t start = 0;
    std::size_t fedInReply = 0;
    while (start <= in.size()) {
        std::size_t e = in.find('\n', start);
        if (e == std::string::npos) e = in.size();
        std::string line = in.substr(start, e - start);
        start = e + 1;
        if (line.find('\r') != std::string::npos) {
            continue;  // a LineReader never hands over a CR
        }
        ++fedInReply;
        const auto st = parser.feedLine(line);
        if (st == ReplyParser::Status::Invalid) {
            fedInReply = 0;
            continue;
        }
        if (st != ReplyParser::Status::Complete) {
            continue;
        }
        const Reply r = parser.take();
        FUZZ_CHECK(r.code >= 200 && r.code <= 599, "code in 200..599");
        FUZZ_CHECK(!r.lines.empty() && r.lines.size() == fedInReply, "one Reply line per fed line");
        FUZZ_CHECK(r.lines.size() <= 1000, "bounded line count");
        fedInReply = 0;
        const std::string wire = r.wire();
        checkWire(wire, r.code, r.lines.size());
        // Re-parse the wire form: the same reply.
        ReplyParser again;
        const std::vector<std::string> wl = splitCrlf(wire);
        for (std::size_t i = 0; i < wl.size(); ++i) {
            const auto s2 = again.feedLine(wl[i]);
            FUZZ_CHECK(s2 == (i + 1 < wl.size() ? ReplyParser::Status::NeedMore : ReplyParser::Status::Complete),
                       "wire() re-parses as one reply");
        }
        const Reply r2 = again.take();
        FUZZ_CHECK(r2.code == r.code && r2.lines == r.lines, "wire() round-trips");
    }

    // formatReply with arbitrary text: always well-formed wire text (no smuggled lines).
    if (size >= 2) {
        const int code = 200 + (data[0] | (data[1] << 8)) % 400;
        const std::string text = in.substr(2);
        std::size_t nl = 1;
        for (char c : text) nl += c == '\n';
        // Callers only pass control-free text (config.cpp readLineText) plus '\n'/"\r\n" line
        // breaks; formatReply strips only a CR before LF, so a bare CR would reach the wire.
        bool bareCr = false;
        for (std::size_t i = 0; i < text.size(); ++i) {
            bareCr = bareCr || (text[i] == '\r' && (i + 1 == text.size() || text[i + 1] != '\n'));
        }
        if (!bareCr) {
            const std::string w = formatReply(code, text);
            checkWire(w, code, nl);
        }
    }
    return 0;
}
