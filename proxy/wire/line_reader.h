// Bounded, resumable extraction of CRLF-terminated lines from a byte buffer.
// Only CRLF ends a line (RFC 5321 §2.3.8): a bare CR or LF inside a line is reported, never
// treated as a line end, so "DATA\nRSET\r\n" is one bad line, not two commands.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace subproxy {

struct LineResult {
    enum class Status {
        NeedMore,    // no CRLF yet and the buffer is below the limit
        Line,        // `line` holds the line without its CRLF
        TooLong,     // the line exceeded `limit`; its bytes up to and including CRLF were
                     // consumed (or are being discarded: call again after more input)
        BadEnding,   // the line held a bare CR, bare LF or NUL; consumed through its CRLF
    };
    Status status = Status::NeedMore;
    std::string line;
};

// Reads lines out of an input buffer it owns.  Memory stays bounded by `limit` plus one read:
// an over-long line is discarded as it streams in, not stored.
class LineReader {
public:
    explicit LineReader(std::size_t limit) : limit_(limit) {}

    void setLimit(std::size_t limit) { limit_ = limit; }
    void append(std::string_view bytes) { buffer_.append(bytes.data(), bytes.size()); }
    LineResult next();

    // Bytes received but not yet returned as lines (e.g. plaintext pipelined behind STARTTLS).
    std::size_t buffered() const { return buffer_.size(); }
    void clear();
    // Hands the unconsumed bytes to another reader (e.g. the DATA scanner) and empties this one.
    std::string takeBuffered();

private:
    std::size_t limit_;
    std::string buffer_;
    bool discarding_ = false;  // inside an over-long line: drop bytes until CRLF
    std::size_t scanPos_ = 0;  // bytes of buffer_ already scanned for the current line
    bool bad_ = false;         // the current line so far holds a bare CR, bare LF or NUL
};

}  // namespace subproxy
