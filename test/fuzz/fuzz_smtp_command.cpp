// parseCommand and parsePathCommand: what they return can be relayed verbatim without
// changing meaning (no controls, no spaces or brackets outside quotes in the path, params
// without spaces), and re-parsing the rebuilt line gives the same result.
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "wire/smtp_command.h"

using namespace subproxy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view line(reinterpret_cast<const char*>(data), size);
    if (line.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
        return 0;  // the LineReader never hands such a line to the parsers
    }

    const Command cmd = parseCommand(line);
    FUZZ_CHECK(cmd.verbText.size() <= 16, "verbText bounded for logs");
    FUZZ_CHECK(cmd.arg.empty() || (cmd.arg.front() != ' ' && cmd.arg.back() != ' '), "arg trimmed");
    FUZZ_CHECK(cmd.arg.size() <= size, "arg within the line");
    FUZZ_CHECK((cmd.verb == Verb::Unknown || cmd.spec().verb == cmd.verb),
               "spec matches verb");
    if (cmd.verb != Verb::Unknown) {
        const std::string_view word = line.substr(0, line.find(' '));
        FUZZ_CHECK(word.size() == cmd.spec().name.size(), "a known verb is the whole first word");
    }

    for (std::string_view kw : {std::string_view("FROM"), std::string_view("TO")}) {
        const auto pc = parsePathCommand(line, kw);
        if (!pc) {
            continue;
        }
        FUZZ_CHECK(pc->path.size() <= 256, "path at most 256 octets");
        for (unsigned char c : pc->path) {
            if (c < 0x20 || c == 0x7f) {
                std::fprintf(stderr, "path=%s\n", fuzz::escape(pc->path).c_str());
            }
            FUZZ_CHECK(c >= 0x20 && c != 0x7f, "no control characters in a path (RFC 5321 quoted-pair is %d92 %d32-126)");
        }
        bool quoted = false;
        for (std::size_t i = 0; i < pc->path.size(); ++i) {
            const auto c = static_cast<unsigned char>(pc->path[i]);
            if (quoted && c == '\\') {
                ++i;
                continue;
            }
            if (c == '"') quoted = !quoted;
            if (!quoted) {
                FUZZ_CHECK(c != '<' && c != '>' && c != ' ', "no bracket or space outside quotes");
            }
        }
        for (const auto& p : pc->params) {
            FUZZ_CHECK(!p.empty() && p.find(' ') == std::string::npos, "params are non-empty words");
        }
        // What ClientProtocol relays: "FROM:<path> p1 p2"; it must parse back the same.
        std::string rebuilt = std::string(kw) + ":<" + pc->path + ">";
        for (const auto& p : pc->params) rebuilt += " " + p;
        const auto again = parsePathCommand(rebuilt, kw);
        FUZZ_CHECK(again && again->path == pc->path && again->params == pc->params, "rebuilt line re-parses the same");
    }
    return 0;
}
