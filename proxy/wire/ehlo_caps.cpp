// Filtering the MSA's EHLO keywords for the customer.
#include "wire/ehlo_caps.h"

#include <array>
#include <string_view>

#include "wire/text_util.h"

namespace subproxy {

namespace {

// Keywords a proxy must not pass on: they are ours to offer (STARTTLS, AUTH), would bypass the
// DATA scanner (CHUNKING, BINARYMIME), leak or abuse the MSA (VRFY, EXPN, ETRN, TURN), or are
// the proxy's own privileged channel (XCLIENT, XFORWARD).
constexpr std::array<std::string_view, 11> kDropped{
    "CHUNKING", "BINARYMIME", "XCLIENT", "XFORWARD", "STARTTLS", "AUTH",
    "VRFY",     "EXPN",       "ETRN",    "TURN",     "ATRN",
};

std::string_view firstWord(std::string_view line) {
    return line.substr(0, line.find(' '));
}

bool isDropped(std::string_view word) {
    // "AUTH=PLAIN LOGIN" is the pre-RFC 4954 form some MSAs still send.
    if (word.size() >= 5 && iequals(word.substr(0, 5), "AUTH=")) {
        return true;
    }
    for (std::string_view dropped : kDropped) {
        if (iequals(word, dropped)) {
            return true;
        }
    }
    return false;
}

// 0 for "unlimited" and for anything that is not a plain decimal number.
std::uint64_t parseSize(std::string_view text) {
    text = trimSpaces(text);
    if (text.empty() || text.size() > 19) {
        return 0;
    }
    std::uint64_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') {
            return 0;
        }
        value = value * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return value;
}

// min() where 0 means unlimited.
std::uint64_t minLimit(std::uint64_t a, std::uint64_t b) {
    if (a == 0) {
        return b;
    }
    if (b == 0) {
        return a;
    }
    return a < b ? a : b;
}

std::string sizeKeyword(std::uint64_t limit) {
    return limit == 0 ? std::string("SIZE") : "SIZE " + std::to_string(limit);
}

}  // namespace

bool EhloCaps::has(const std::string& keyword) const {
    for (const std::string& line : keywords) {
        if (iequals(firstWord(line), keyword)) {
            return true;
        }
    }
    return false;
}

std::uint64_t EhloCaps::size() const {
    for (const std::string& line : keywords) {
        if (iequals(firstWord(line), "SIZE")) {
            const std::size_t space = line.find(' ');
            return space == std::string::npos ? 0
                                              : parseSize(std::string_view(line).substr(space));
        }
    }
    return 0;
}

EhloCaps parseEhloCaps(const std::vector<std::string>& replyLines) {
    EhloCaps caps;
    for (std::size_t i = 1; i < replyLines.size(); ++i) {
        const std::string_view line = trimSpaces(replyLines[i]);
        if (!line.empty()) {
            caps.keywords.emplace_back(line);
        }
    }
    return caps;
}

std::vector<std::string> relayedCaps(const EhloCaps& msa, std::uint64_t ourMaxSize) {
    std::vector<std::string> out;
    bool sawSize = false;
    const std::uint64_t limit = minLimit(msa.size(), ourMaxSize);
    for (const std::string& line : msa.keywords) {
        const std::string_view word = firstWord(line);
        if (isDropped(word)) {
            continue;
        }
        if (iequals(word, "SIZE")) {
            if (!sawSize) {
                out.push_back(sizeKeyword(limit));
            }
            sawSize = true;
            continue;
        }
        out.push_back(line);
    }
    if (!sawSize) {
        out.push_back(sizeKeyword(ourMaxSize));
    }
    return out;
}

std::vector<std::string> capsBeforeAuth(const EhloCaps* msa, std::uint64_t ourMaxSize) {
    std::vector<std::string> out{"PIPELINING", sizeKeyword(msa ? minLimit(msa->size(), ourMaxSize) : ourMaxSize),
                                 "ENHANCEDSTATUSCODES"};
    // Promising a body type or parameter the MSA would refuse only moves the failure to MAIL.
    for (const char* keyword : {"8BITMIME", "SMTPUTF8", "DSN"}) {
        if (msa ? msa->has(keyword) : std::string_view(keyword) == "8BITMIME") {
            out.emplace_back(keyword);
        }
    }
    return out;
}

}  // namespace subproxy
