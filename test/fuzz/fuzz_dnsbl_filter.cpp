// DNSBL answer patterns, zone evaluation, scoring and reply templates, plus the CIDR/IP
// parsers they sit on.  Input: a selector byte, then text; the text is also used as
// an address, a CIDR and a template.
#include <fuzzer/FuzzedDataProvider.h>

#include <string>
#include <string_view>
#include <vector>

#include "wire/cidr.h"
#include "defence/dnsbl_filter.h"
#include "fuzz_util.h"

using namespace subproxy;

namespace {

void checkPattern(const std::string& text, FuzzedDataProvider& fdp) {
    std::string err;
    const auto p = parseAnswerPattern(text, &err);
    if (!p) {
        FUZZ_CHECK(!err.empty(), "a refused pattern says why");
        return;
    }
    for (const auto& o : p->octets) {
        FUZZ_CHECK(!o.ranges.empty(), "every octet accepts something");
        for (const auto& r : o.ranges) {
            FUZZ_CHECK(0 <= r.first && r.first <= r.second && r.second <= 255, "ranges within 0..255, lo <= hi");
        }
    }
    for (int k = 0; k < 8; ++k) {
        const std::uint32_t a = fdp.ConsumeIntegral<std::uint32_t>();
        bool ref = true;
        for (int i = 0; i < 4; ++i) {
            const int v = (a >> (24 - 8 * i)) & 0xff;
            bool in = false;
            for (const auto& r : p->octets[i].ranges) in = in || (r.first <= v && v <= r.second);
            ref = ref && in;
        }
        FUZZ_CHECK(p->matches(a) == ref, "matches() agrees with the ranges");
    }
}

void checkAddress(const std::string& text) {
    const auto a = parseIpAddress(text);
    if (a) {
        if (!a->v6) {
            for (int i = 4; i < 16; ++i) FUZZ_CHECK(a->bytes[i] == 0, "unused bytes are zero");
        }
        const std::string f = formatIpAddress(*a);
        const auto b = parseIpAddress(f);
        FUZZ_CHECK(b && *b == *a, "parseIpAddress(formatIpAddress(a)) == a");
        FUZZ_CHECK(formatIpAddress(*b) == f, "formatting is canonical");
        const std::string q = dnsblQueryName(*a, "zone.test");
        if (a->v6) FUZZ_CHECK(q.size() == 64 + 9, "IPv6 query names are 32 reversed nibbles");
        for (unsigned prefix = 0; prefix <= a->bits(); prefix += 7) {
            const IpAddress m = maskIpAddress(*a, prefix);
            FUZZ_CHECK(maskIpAddress(m, prefix) == m, "mask is idempotent");
            Cidr c{m, prefix};
            FUZZ_CHECK(c.contains(*a), "a block contains the addresses it was masked from");
        }
    }
    bool hostBits = false;
    const auto c = parseCidr(text, &hostBits);
    if (c) {
        FUZZ_CHECK(c->prefix <= c->network.bits(), "prefix within the family");
        FUZZ_CHECK(maskIpAddress(c->network, c->prefix) == c->network, "host bits are zero");
        FUZZ_CHECK(c->contains(c->network), "a block contains its network");
        const auto d = parseCidr(c->str());
        if (!d) std::fprintf(stderr, "str=%s\n", c->str().c_str());
        FUZZ_CHECK(d && d->network == c->network && d->prefix == c->prefix, "parseCidr(str()) round-trips");
    }
}

void checkTemplate(const std::string& text) {
    std::string err;
    const bool valid = validDnsblTemplate(text, &err);
    if (!valid) {
        FUZZ_CHECK(!err.empty(), "a refused template says why");
        return;
    }
    std::string ref;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%') {
            const char c = text[++i];
            ref += c == '0' ? "CLIENT" : c == '1' ? "RULE" : c == '2' ? "ZONE" : "%";
        } else {
            ref += text[i];
        }
    }
    FUZZ_CHECK(expandDnsblTemplate(text, "CLIENT", "RULE", "ZONE") == ref, "valid templates expand as documented");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
    FuzzedDataProvider fdp(data, size);
    checkPattern(text, fdp);
    checkAddress(text);
    checkTemplate(text);

    // Zone evaluation and scoring with answers from the input.
    DnsblConfig cfg;
    cfg.threshold = static_cast<int>(data[0] % 4) + 1;  // config allows >= 1
    std::vector<ZoneResult> results;
    for (int z = 0; z < 3; ++z) {
        DnsblZone zone;
        zone.zone = "z" + std::to_string(z) + ".test";
        zone.name = "z" + std::to_string(z);
        zone.weight = fdp.ConsumeIntegralInRange(-3, 3);
        zone.bitmask = fdp.ConsumeBool() ? fdp.ConsumeIntegral<std::uint8_t>() : 0;
        if (auto p = parseAnswerPattern(fdp.ConsumeBool() ? "127.0.0.[2..11]" : text, nullptr)) {
            zone.filters.push_back(*p);
        }
        std::vector<std::uint32_t> answers;
        const int n = fdp.ConsumeIntegralInRange(0, 3);
        for (int i = 0; i < n; ++i) {
            answers.push_back(fdp.ConsumeBool() ? (0x7f000000u | fdp.ConsumeIntegral<std::uint8_t>())
                                                : fdp.ConsumeIntegral<std::uint32_t>());
        }
        const ZoneResult r = evaluateZone(zone, answers);
        if (r.status == ZoneStatus::Listed) {
            FUZZ_CHECK((r.code >> 24) == 127 && (r.code >> 8) != 0x7fffff, "listed only by 127/8 outside 127.255.255/24");
            bool among = false;
            for (auto a : answers) among = among || a == r.code;
            FUZZ_CHECK(among, "the listing code is one of the answers");
        }
        if (answers.empty()) FUZZ_CHECK(r.status == ZoneStatus::NotListed, "NXDOMAIN is not listed");
        cfg.zones.push_back(zone);
        results.push_back(r);
    }
    const DnsblVerdict v = scoreDnsbl(cfg, results, "192.0.2.1");
    FUZZ_CHECK(v.listed == (v.score >= cfg.threshold), "listed iff score >= threshold");
    return 0;
}
