#include "wire/cidr.h"

#include <arpa/inet.h>

#include <cstring>

namespace subproxy {

namespace {

bool isV4Mapped(const std::array<uint8_t, 16>& b) {
    for (int i = 0; i < 10; ++i)
        if (b[i] != 0) return false;
    return b[10] == 0xff && b[11] == 0xff;
}

}  // namespace

std::optional<IpAddress> parseIpAddress(std::string_view text) {
    if (text.size() >= 2 && text.front() == '[' && text.back() == ']')
        text = text.substr(1, text.size() - 2);
    if (auto pct = text.find('%'); pct != std::string_view::npos) text = text.substr(0, pct);
    if (text.empty() || text.size() > 63) return std::nullopt;
    std::string s(text);
    IpAddress a;
    if (s.find(':') == std::string::npos) {
        if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) != 1) return std::nullopt;
        return a;
    }
    if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) != 1) return std::nullopt;
    if (isV4Mapped(a.bytes)) {
        std::array<uint8_t, 16> v4{};
        std::memcpy(v4.data(), a.bytes.data() + 12, 4);
        a.bytes = v4;
        return a;
    }
    a.v6 = true;
    return a;
}

std::string formatIpAddress(const IpAddress& addr) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (!inet_ntop(addr.v6 ? AF_INET6 : AF_INET, addr.bytes.data(), buf, sizeof buf)) return {};
    return buf;
}

std::string clientKey(const IpAddress& addr, unsigned ipv6Prefix) {
    if (!addr.v6 || ipv6Prefix >= 128) {
        return formatIpAddress(addr);
    }
    return formatIpAddress(maskIpAddress(addr, ipv6Prefix)) + "/" + std::to_string(ipv6Prefix);
}

IpAddress maskIpAddress(const IpAddress& addr, unsigned prefix) {
    IpAddress m = addr;
    const unsigned total = addr.bits();
    if (prefix >= total) return m;
    for (unsigned i = 0; i < total / 8; ++i) {
        const unsigned first = i * 8;
        if (first >= prefix)
            m.bytes[i] = 0;
        else if (prefix - first < 8)
            m.bytes[i] &= static_cast<uint8_t>(0xff00u >> (prefix - first));
    }
    return m;
}

bool Cidr::contains(const IpAddress& addr) const {
    return addr.v6 == network.v6 && maskIpAddress(addr, prefix) == network;
}

std::string Cidr::str() const {
    return formatIpAddress(network) + "/" + std::to_string(prefix);
}

std::optional<Cidr> parseCidr(std::string_view text, bool* hostBitsSet) {
    if (hostBitsSet) *hostBitsSet = false;
    std::string_view addrPart = text;
    std::optional<unsigned> prefix;
    if (auto slash = text.find('/'); slash != std::string_view::npos) {
        addrPart = text.substr(0, slash);
        std::string_view p = text.substr(slash + 1);
        if (p.empty() || p.size() > 3) return std::nullopt;
        unsigned v = 0;
        for (char c : p) {
            if (c < '0' || c > '9') return std::nullopt;
            v = v * 10 + static_cast<unsigned>(c - '0');
        }
        prefix = v;
    }
    // A mapped IPv6 block keeps its prefix relative to the 128-bit form; detect that before
    // parseIpAddress folds it into IPv4.
    std::string_view bare = addrPart;
    if (bare.size() >= 2 && bare.front() == '[' && bare.back() == ']')
        bare = bare.substr(1, bare.size() - 2);
    const bool writtenAsV6 = bare.find(':') != std::string_view::npos;
    auto addr = parseIpAddress(addrPart);
    if (!addr) return std::nullopt;
    unsigned len;
    if (!prefix) {
        len = addr->bits();
    } else if (writtenAsV6 && !addr->v6) {  // ::ffff:a.b.c.d/N, N in 96..128
        if (*prefix < 96 || *prefix > 128) return std::nullopt;
        len = *prefix - 96;
    } else {
        if (*prefix > addr->bits()) return std::nullopt;
        len = *prefix;
    }
    Cidr c;
    c.prefix = len;
    c.network = maskIpAddress(*addr, len);
    if (hostBitsSet) *hostBitsSet = c.network != *addr;
    return c;
}

bool CidrList::add(std::string_view text) {
    auto c = parseCidr(text);
    if (!c) return false;
    blocks_.push_back(*c);
    return true;
}

const Cidr* CidrList::find(const IpAddress& addr) const {
    for (const auto& b : blocks_)
        if (b.contains(addr)) return &b;
    return nullptr;
}

bool CidrList::contains(const IpAddress& addr) const { return find(addr) != nullptr; }

bool CidrList::contains(std::string_view addrText) const {
    auto a = parseIpAddress(addrText);
    return a && contains(*a);
}

}  // namespace subproxy
