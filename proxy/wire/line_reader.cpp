// Bounded, resumable CRLF line extraction.
//
// Timing of TooLong: once more than `limit` content bytes of a line have arrived without a
// CRLF, the reader enters discarding mode, drops those bytes and returns NeedMore until the
// CRLF that ends the long line arrives; it then returns TooLong exactly once, with the whole
// line (through its CRLF) consumed.  A long line whose CRLF is already buffered gives TooLong
// at once.  Either way TooLong means "the offending line is gone, the next byte starts a new
// line", so the caller can reply 500 and carry on in sync.  `limit` counts the line without
// its CRLF.
#include "wire/line_reader.h"

namespace subproxy {

namespace {

constexpr char kCr = '\r';
constexpr char kLf = '\n';

}  // namespace

LineResult LineReader::next() {
    LineResult result;
    // Resume where the previous call stopped: pipelined input is scanned once, not per call.
    std::size_t i = scanPos_;
    while (i < buffer_.size()) {
        const char c = buffer_[i];
        if (c == kCr) {
            if (i + 1 == buffer_.size()) {
                break;  // CR is the last byte: it may be the first half of a split CRLF
            }
            if (buffer_[i + 1] == kLf) {
                const bool tooLong = discarding_ || i > limit_;
                if (tooLong) {
                    result.status = LineResult::Status::TooLong;
                } else if (bad_) {
                    result.status = LineResult::Status::BadEnding;
                } else {
                    result.status = LineResult::Status::Line;
                    result.line.assign(buffer_, 0, i);
                }
                buffer_.erase(0, i + 2);
                if (buffer_.empty()) {
                    std::string().swap(buffer_);  // between commands a session holds no buffer
                }
                scanPos_ = 0;
                bad_ = false;
                discarding_ = false;
                return result;
            }
            bad_ = true;  // bare CR
        } else if (c == kLf || c == '\0') {
            bad_ = true;  // bare LF (a CRLF's LF is handled above) or NUL
        }
        ++i;
    }
    scanPos_ = i;
    if (discarding_ || scanPos_ > limit_) {
        // Drop what we scanned; a trailing CR (not yet scanned) stays for the split-CRLF case.
        discarding_ = true;
        buffer_.erase(0, scanPos_);
        scanPos_ = 0;
    }
    result.status = LineResult::Status::NeedMore;
    return result;
}

void LineReader::clear() {
    buffer_.clear();
    discarding_ = false;
    scanPos_ = 0;
    bad_ = false;
}

std::string LineReader::takeBuffered() {
    std::string taken;
    taken.swap(buffer_);
    clear();
    return taken;
}

}  // namespace subproxy
