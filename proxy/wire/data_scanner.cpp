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
    Result result;
    if (state_ == kDone) {
        result.done = true;
        return result;
    }
    const bool normalize = policy_ == BareNewline::Normalize;

    // Body bytes after unstuffing: counted always, written only while the body is clean.
    auto emit = [&](std::string_view bytes, std::size_t bodyBytes) {
        size_ += bodyBytes;
        if (maxSize_ != 0 && size_ > maxSize_) {
            tooBig_ = true;
        }
        if (clean()) {
            out.append(bytes.data(), bytes.size());
        }
    };
    // A bare CR or LF ends the current line as if it were CRLF; only Normalize keeps the body.
    auto bareNewline = [&]() {
        if (!normalize) {
            bareNewline_ = true;
        }
        emit("\r\n", 2);
        state_ = kNormStart;
    };
    // An ordinary byte (or NUL) inside a line.
    auto midByte = [&](char c) {
        if (c == '\0') {
            nul_ = true;
        }
        emit(std::string_view(&c, 1), 1);
        state_ = kMid;
    };

    std::size_t i = 0;
    while (i < in.size()) {
        const char c = in[i];
        switch (state_) {
        case kLineStart:
        case kNormStart:
            if (c == '.') {
                state_ = state_ == kLineStart ? kDot : kNormDot;
            } else if (c == '\r') {
                state_ = kCr;
            } else if (c == '\n') {
                bareNewline();
            } else {
                midByte(c);
            }
            ++i;
            break;
        case kDot:
        case kNormDot:
            if (c == '\r') {
                state_ = state_ == kDot ? kDotCr : kNormDotCr;
            } else if (c == '\n') {
                emit("..", 1);  // the lone "." line, then its bare newline
                bareNewline();
            } else if (c == '.') {
                emit("..", 1);  // "..x": the line is ".x", stuffed again on output
                state_ = kMid;
            } else {
                midByte(c);  // ".x": the dot was stuffing (RFC 5321 §4.5.2)
            }
            ++i;
            break;
        case kDotCr:
        case kNormDotCr:
            if (c == '\n') {
                if (state_ == kDotCr) {
                    state_ = kDone;
                    result.consumed = i + 1;
                    result.done = true;
                    return result;
                }
                emit("..\r\n", 3);  // "." CRLF after a bare newline is a data line
                state_ = kLineStart;
                ++i;
            } else {
                emit("..", 1);
                bareNewline();  // the CR after "." was bare; `c` is read again below
            }
            break;
        case kMid: {
            // Fast path: copy the run of ordinary bytes in one go.
            std::size_t end = i;
            while (end < in.size() && !isSpecial(in[end])) {
                ++end;
            }
            if (end > i) {
                emit(in.substr(i, end - i), end - i);
                i = end;
                break;
            }
            if (c == '\r') {
                state_ = kCr;
            } else if (c == '\n') {
                bareNewline();
            } else {
                midByte(c);
            }
            ++i;
            break;
        }
        case kCr:
            if (c == '\n') {
                emit("\r\n", 2);
                state_ = kLineStart;
                ++i;
            } else {
                bareNewline();  // bare CR; `c` is read again in the new state
            }
            break;
        default:
            result.consumed = i;
            result.done = true;
            return result;
        }
    }
    result.consumed = in.size();
    return result;
}

}  // namespace subproxy
