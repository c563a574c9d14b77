// What we advertise to the customer after AUTH: the MSA's EHLO keywords less the ones a proxy
// must not pass on (CHUNKING, XCLIENT, XFORWARD, STARTTLS, AUTH, VRFY/EXPN/ETRN, BINARYMIME),
// with SIZE capped at our own limit.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace subproxy {

struct EhloCaps {
    std::vector<std::string> keywords;  // the MSA's EHLO lines after the first (greeting) line
    bool has(const std::string& keyword) const;  // case-insensitive, matches the first word
    std::uint64_t size() const;                  // SIZE value, 0 when absent or unlimited
};

EhloCaps parseEhloCaps(const std::vector<std::string>& replyLines);

// The keywords to show the customer after AUTH (without the greeting line).
std::vector<std::string> relayedCaps(const EhloCaps& msa, std::uint64_t ourMaxSize);

// The keywords to show after TLS and before AUTH, but for AUTH itself (security checklist §4
// "Advertise"): PIPELINING and ENHANCEDSTATUSCODES (ours), SIZE lowered to the MSA's limit, and
// 8BITMIME, SMTPUTF8, DSN only when the MSA has them.  `msa` null (its capabilities are not
// known yet): SIZE ours and 8BITMIME, as before the MSA was ever asked.
std::vector<std::string> capsBeforeAuth(const EhloCaps* msa, std::uint64_t ourMaxSize);

}  // namespace subproxy
