// DATA body scanner: a byte-at-a-time state machine (with a bulk fast path for ordinary bytes
// in mid-line) that finds the real CRLF "." CRLF, undoes and redoes dot-stuffing, and catches
// bare CR, bare LF and NUL.
//
// The terminator is the literal byte sequence CRLF "." CRLF (or "." CRLF as the very first
// line).  A line start reached through a bare (or normalised) CR/LF is tracked as a separate
// state so that a "." line after it is data, never the end: that is what makes "\n.\n",
// "\n.\r\n", "\r.\r\n" etc. harmless (SMTP smuggling, CVE-2023-51764).
//
// Output is the canonical body: CRLF line ends, every line beginning with "." sent with one
// extra "." (the caller appends ".\r\n" after it).  Input lines are unstuffed first (".x" is
// the line "x", "..x" the line ".x"); a lone "." line that is not the terminator (possible
// only after a bare newline) keeps its dot.  With Reject, and after NUL or the size limit,
// output stops but scanning continues in the same way until the terminator.
#include "wire/data_scanner.h"

namespace subproxy {

namespace {

enum State : int {
    kLineStart = 0,  // after a real CRLF, or at the start of the body
    kNormStart,      // after a bare CR/LF: a "." line here cannot end the body
    kDot,            // "." at a real line start
    kNormDot,        // "." at a bare-newline line start
    kDotCr,          // "." CR at a real line start: LF ends the body
    kNormDotCr,      // "." CR at a bare-newline line start
    kMid,            // inside a line
    kCr,             // CR inside a line, waiting to see whether LF follows
    kDone,
};

bool isSpecial(char c) { return c == '\r' || c == '\n' || c == '\0'; }

}  // namespace

DataScanner::Result DataScanner::feed(std::string_view in, std::string& out) {
    // The body grows line by line: room for all of `in` at once (stuffing dots may still add a
    // few bytes) instead of a reallocation every few lines.
    out.reserve(out.size() + in.size() + 16);
    std::size_t i = 0;
    while (i < in.size() && state_ != kDone) {
        i += step(in, i, out);
    }
    Result result;
    result.consumed = i;  // after the terminator, the rest belongs to the next command
    result.done = state_ == kDone;
    return result;
}

std::size_t DataScanner::step(std::string_view in, std::size_t i, std::string& out) {
    switch (state_) {
    case kLineStart:
    case kNormStart:
        return atLineStart(in[i], out);
    case kDot:
    case kNormDot:
        return afterDot(in[i], out);
    case kDotCr:
    case kNormDotCr:
        return afterDotCr(in[i], out);
    case kMid:
        return inLine(in, i, out);
    case kCr:
        return afterCr(in[i], out);
    default:
        return 0;  // kDone: feed() stops before reading more
    }
}

std::size_t DataScanner::atLineStart(char c, std::string& out) {
    if (c == '.') {
        state_ = state_ == kLineStart ? kDot : kNormDot;
    } else {
        lineByte(c, out);
    }
    return 1;
}

std::size_t DataScanner::afterDot(char c, std::string& out) {
    if (c == '\r') {
        state_ = state_ == kDot ? kDotCr : kNormDotCr;
    } else if (c == '\n') {
        emit("..", 1, out);  // the lone "." line, then its bare newline
        bareNewline(out);
    } else if (c == '.') {
        emit("..", 1, out);  // "..x": the line is ".x", stuffed again on output
        state_ = kMid;
    } else {
        midByte(c, out);  // ".x": the dot was stuffing (RFC 5321 §4.5.2)
    }
    return 1;
}

std::size_t DataScanner::afterDotCr(char c, std::string& out) {
    if (c != '\n') {
        emit("..", 1, out);
        bareNewline(out);  // the CR after "." was bare; `c` is read again in the new state
        return 0;
    }
    if (state_ == kDotCr) {
        state_ = kDone;  // CRLF "." CRLF: the terminator, consumed with the body
        return 1;
    }
    emit("..\r\n", 3, out);  // "." CRLF after a bare newline is a data line
    state_ = kLineStart;
    return 1;
}

std::size_t DataScanner::inLine(std::string_view in, std::size_t i, std::string& out) {
    // Fast path: copy the run of ordinary bytes in one go.
    std::size_t end = i;
    while (end < in.size() && !isSpecial(in[end])) {
        ++end;
    }
    if (end > i) {
        emit(in.substr(i, end - i), end - i, out);
        return end - i;
    }
    lineByte(in[i], out);
    return 1;
}

void DataScanner::lineByte(char c, std::string& out) {
    if (c == '\r') {
        state_ = kCr;
    } else if (c == '\n') {
        bareNewline(out);
    } else {
        midByte(c, out);
    }
}

std::size_t DataScanner::afterCr(char c, std::string& out) {
    if (c == '\n') {
        emit("\r\n", 2, out);
        state_ = kLineStart;
        return 1;
    }
    bareNewline(out);  // bare CR; `c` is read again in the new state
    return 0;
}

// Body bytes after unstuffing: counted always, written only while the body is clean.
void DataScanner::emit(std::string_view bytes, std::size_t bodyBytes, std::string& out) {
    size_ += bodyBytes;
    if (maxSize_ != 0 && size_ > maxSize_) {
        tooBig_ = true;
    }
    if (clean()) {
        out.append(bytes.data(), bytes.size());
    }
}

// A bare CR or LF ends the current line as if it were CRLF; only Normalize keeps the body.
void DataScanner::bareNewline(std::string& out) {
    if (policy_ != BareNewline::Normalize) {
        bareNewline_ = true;
    }
    emit("\r\n", 2, out);
    state_ = kNormStart;
}

// An ordinary byte (or NUL) inside a line.
void DataScanner::midByte(char c, std::string& out) {
    if (c == '\0') {
        nul_ = true;
    }
    emit(std::string_view(&c, 1), 1, out);
    state_ = kMid;
}

}  // namespace subproxy
