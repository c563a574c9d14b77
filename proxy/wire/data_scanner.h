// The DATA body scanner (RFC 5321 §4.1.1.4, §4.5.2).  Only CRLF "." CRLF ends the body; bare
// CR, bare LF and NUL are smuggling material (CVE-2023-51764) and are either refused or, with
// BareNewline::Normalize, turned into CRLF.  The scanner unstuffs dots as it reads and stuffs
// them again on output, so what goes upstream is canonical CRLF text that round-trips
// byte-exact for well-formed input.  Streaming: memory is O(1), not O(message).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace subproxy {

enum class BareNewline { Reject, Normalize };

class DataScanner {
public:
    struct Result {
        std::size_t consumed = 0;  // input bytes used; the rest belongs to the next command
        bool done = false;         // the CRLF.CRLF terminator was seen (and consumed)
    };

    DataScanner(BareNewline policy, std::uint64_t maxSize) : policy_(policy), maxSize_(maxSize) {}

    // Scans `in`, appending the canonical body (dot-stuffed, CRLF, without the terminator) to
    // `out`.  Once a violation or the size limit is hit, output stops; scanning goes on until
    // the terminator so the session stays in sync.  A call that ends unclean may have appended
    // part of the offending run (how much depends on chunking): the caller drops the whole
    // body then, as the session does by aborting the MSA's copy.
    Result feed(std::string_view in, std::string& out);

    bool sawBareNewline() const { return bareNewline_; }
    bool sawNul() const { return nul_; }
    bool tooBig() const { return tooBig_; }
    bool clean() const { return !bareNewline_ && !nul_ && !tooBig_; }
    // Body size as received, without dot-stuffing and terminator.
    std::uint64_t size() const { return size_; }

private:
    // One step of the state machine per state: each looks at the byte at `in[i]` (kMid at the
    // run starting there) and returns how many input bytes it used; 0 means the byte is read
    // again in the new state.
    std::size_t step(std::string_view in, std::size_t i, std::string& out);
    std::size_t atLineStart(char c, std::string& out);
    std::size_t afterDot(char c, std::string& out);
    std::size_t afterDotCr(char c, std::string& out);
    std::size_t inLine(std::string_view in, std::size_t i, std::string& out);
    std::size_t afterCr(char c, std::string& out);
    void emit(std::string_view bytes, std::size_t bodyBytes, std::string& out);
    void bareNewline(std::string& out);
    void midByte(char c, std::string& out);
    // A byte inside a line that is not a dot at its start: CR, a bare LF, or any other byte.
    void lineByte(char c, std::string& out);

    BareNewline policy_;
    std::uint64_t maxSize_;
    // state machine; defined in the .cpp
    int state_ = 0;
    bool bareNewline_ = false;
    bool nul_ = false;
    bool tooBig_ = false;
    std::uint64_t size_ = 0;
};

}  // namespace subproxy
