// SMTP replies: parsing what the MSA says (multi-line, RFC 5321 §4.2.1) and formatting ours.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace subproxy {

struct Reply {
    int code = 0;                    // 200..599
    std::vector<std::string> lines;  // text after "NNN-" / "NNN ", one entry per line

    int klass() const { return code / 100; }  // 2, 3, 4 or 5
    bool positive() const { return code >= 200 && code < 400; }
    // The wire form: "250-a\r\n250 b\r\n"; the last line always has its space ("334 \r\n").
    std::string wire() const;
    // The lines joined with "; " for logs (not cleaned: callers use printable()).
    std::string text() const;
};

// Incremental parser: feed it one line at a time (without CRLF).
class ReplyParser {
public:
    enum class Status { NeedMore, Complete, Invalid };
    Status feedLine(std::string_view line);
    // Valid after Complete; the parser is then ready for the next reply.
    Reply take();

private:
    Reply current_;
    bool started_ = false;
    Reply done_;
};

// The MSA's queue id in its reply to the end of data, Postfix's "250 2.0.0 Ok: queued as
// 4Tx1Yk2zQbz9sXd" (short ids "6A1B2C3D4E" too): the letters and digits after "queued as ",
// at most 64; "" when the reply names none.  Joins our message line to the MSA's log.
std::string queueIdOf(const Reply& reply);

// "530 5.7.0 text" -> wire form with CRLF; multi-line when `text` holds '\n'.
std::string formatReply(int code, std::string_view text);

}  // namespace subproxy
