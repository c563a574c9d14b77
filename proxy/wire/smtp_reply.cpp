// SMTP reply parsing and formatting (RFC 5321 §4.2).
#include "wire/smtp_reply.h"

#include <cctype>
#include <cstddef>

namespace subproxy {

namespace {

// A reply with more lines than this is hostile or broken; EHLO replies have about 20.
constexpr std::size_t kMaxReplyLines = 1000;

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// 200..599 from the first three bytes, or 0.
int parseCode(std::string_view line) {
    if (line.size() < 3 || !isDigit(line[0]) || !isDigit(line[1]) || !isDigit(line[2])) {
        return 0;
    }
    if (line[0] < '2' || line[0] > '5') {
        return 0;
    }
    return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

}  // namespace

std::string Reply::wire() const {
    const std::string code3 = std::to_string(code);
    std::size_t size = code3.size() + 3;
    for (const auto& line : lines) {
        size += code3.size() + line.size() + 3;
    }
    std::string out;
    out.reserve(size);  // one allocation: every reply of every session comes through here
    for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
        out.append(code3).append(1, '-').append(lines[i]).append("\r\n");
    }
    // The last line always keeps its space, even with no text: RFC 4954 §4 spells an empty
    // challenge "334" SP, and clients (and Postfix, which writes "334 ") split on it.
    out.append(code3).append(1, ' ');
    if (!lines.empty()) {
        out.append(lines.back());
    }
    return out.append("\r\n");
}

std::string Reply::text() const {
    std::string out;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (i > 0) {
            out += "; ";
        }
        out += lines[i];
    }
    return out;
}

ReplyParser::Status ReplyParser::feedLine(std::string_view line) {
    const int code = parseCode(line);
    const bool badSeparator = line.size() > 3 && line[3] != '-' && line[3] != ' ';
    // Every line of one reply must carry the same code (RFC 5321 §4.2.1); anything else means
    // we are out of sync with the MSA and must not guess.
    if (code == 0 || badSeparator || (started_ && code != current_.code) ||
        current_.lines.size() >= kMaxReplyLines) {
        current_ = Reply{};
        started_ = false;
        return Status::Invalid;
    }
    current_.code = code;
    started_ = true;
    current_.lines.emplace_back(line.size() > 4 ? line.substr(4) : std::string_view{});
    if (line.size() > 3 && line[3] == '-') {
        return Status::NeedMore;
    }
    done_ = std::move(current_);
    current_ = Reply{};
    started_ = false;
    return Status::Complete;
}

Reply ReplyParser::take() {
    Reply out = std::move(done_);
    done_ = Reply{};
    return out;
}

std::string formatReply(int code, std::string_view text) {
    Reply reply;
    reply.code = code;
    std::size_t start = 0;
    while (true) {
        const std::size_t nl = text.find('\n', start);
        std::string_view piece = text.substr(start, nl == std::string_view::npos ? nl : nl - start);
        if (!piece.empty() && piece.back() == '\r') {
            piece.remove_suffix(1);  // tolerate "\r\n" in the caller's text
        }
        // Whatever the caller passed, no control byte reaches the wire: a stray CR would let
        // a reply text end a line the client then reads as another reply.
        std::string line(piece);
        for (char& c : line) {
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
                c = '?';
            }
        }
        reply.lines.push_back(std::move(line));
        if (nl == std::string_view::npos) {
            break;
        }
        start = nl + 1;
    }
    return reply.wire();
}

std::string queueIdOf(const Reply& reply) {
    constexpr std::string_view kMarker = "queued as ";
    constexpr std::size_t kMaxId = 64;
    for (const std::string& line : reply.lines) {
        const std::size_t at = line.find(kMarker);
        if (at == std::string::npos) {
            continue;
        }
        std::size_t end = at + kMarker.size();
        while (end < line.size() && std::isalnum(static_cast<unsigned char>(line[end])) &&
               end - (at + kMarker.size()) < kMaxId) {
            ++end;
        }
        if (end > at + kMarker.size()) {
            return line.substr(at + kMarker.size(), end - at - kMarker.size());
        }
    }
    return {};
}

}  // namespace subproxy
