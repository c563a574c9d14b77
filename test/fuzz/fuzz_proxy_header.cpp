// PROXY protocol header parser: a header is recognised by its own bytes only (what follows
// never changes the result), every proper prefix of a header asks for more, the bound holds,
// a refusal stays a refusal however much more arrives, and what we send to an MSA parses back
// to the same addresses.
#include <string>
#include <string_view>

#include "wire/proxy_header.h"
#include "fuzz_util.h"

using namespace subproxy;
using Status = ProxyParse::Status;

namespace {

bool sameHeader(const ProxyHeader& a, const ProxyHeader& b) {
    return a.local == b.local && a.source == b.source && a.sourcePort == b.sourcePort &&
           a.destination == b.destination && a.destinationPort == b.destinationPort;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const ProxyParse p = parseProxyHeader(in);
    switch (p.status) {
    case Status::NeedMore:
        FUZZ_CHECK(size < kProxyHeaderMax, "never waits beyond the size bound");
        FUZZ_CHECK(p.error.empty() && p.length == 0, "NeedMore carries no result");
        break;
    case Status::Invalid: {
        FUZZ_CHECK(!p.error.empty(), "a refusal says why");
        const std::string more = std::string(in) + "\r\n" + std::string(in);
        FUZZ_CHECK(parseProxyHeader(more).status == Status::Invalid, "more bytes never repair a refusal");
        break;
    }
    case Status::Done: {
        FUZZ_CHECK(p.length > 0 && p.length <= size && p.length <= kProxyHeaderMax, "length within input and bound");
        FUZZ_CHECK(p.header.version == 1 || p.header.version == 2, "a known version");
        FUZZ_CHECK(p.header.version == 2 || !p.header.local, "LOCAL is v2 only");
        const ProxyParse alone = parseProxyHeader(in.substr(0, p.length));
        FUZZ_CHECK(alone.status == Status::Done && alone.length == p.length && sameHeader(alone.header, p.header),
                   "the header alone parses the same: the customer's bytes after it do not matter");
        fuzz::Splitter split(size);
        for (int i = 0; i < 8; ++i) {
            const std::size_t cut = split.next(p.length) % p.length;  // a proper prefix
            FUZZ_CHECK(parseProxyHeader(in.substr(0, cut)).status == Status::NeedMore,
                       "every proper prefix of a header needs more");
        }
        FUZZ_CHECK(p.header.sourcePort >= 0 && p.header.sourcePort <= 65535, "port range");
        FUZZ_CHECK(p.header.destinationPort >= 0 && p.header.destinationPort <= 65535, "port range");
        const ProxyParse again = parseProxyHeader(buildProxyHeaderV2(p.header));
        FUZZ_CHECK(again.status == Status::Done, "what we build parses");
        if (p.header.local || p.header.source.v6 == p.header.destination.v6) {
            FUZZ_CHECK(sameHeader(again.header, p.header), "build/parse round trip");
        }
        break;
    }
    }
    return 0;
}
