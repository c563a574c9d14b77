// The PROXY protocol header.  See proxy_header.h.
#include "wire/proxy_header.h"

#include <cstdint>
#include <cstring>
#include <vector>

namespace subproxy {

namespace {

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr std::size_t kV1Max = 107;  // proxy-protocol.txt 2.1: the longest line, CRLF included
constexpr char kV2Signature[] = "\r\n\r\n\0\r\nQUIT\n";
constexpr std::size_t kV2SignatureLen = 12;
constexpr std::size_t kV2FixedLen = 16;  // signature, version/command, family, length
constexpr unsigned kV2Version = 0x20;
constexpr unsigned kV2CmdLocal = 0x00;
constexpr unsigned kV2CmdProxy = 0x01;
constexpr unsigned kV2Tcp4 = 0x11;  // AF_INET, STREAM
constexpr unsigned kV2Tcp6 = 0x21;  // AF_INET6, STREAM
constexpr std::size_t kV2Inet4Len = 4 + 4 + 2 + 2;
constexpr std::size_t kV2Inet6Len = 16 + 16 + 2 + 2;

ProxyParse invalid(std::string why) {
    ProxyParse p;
    p.status = ProxyParse::Status::Invalid;
    p.error = std::move(why);
    return p;
}

// True while `bytes` can still grow into `whole` (it is a prefix of it, or starts with it).
bool couldBe(std::string_view bytes, std::string_view whole) {
    const std::size_t n = bytes.size() < whole.size() ? bytes.size() : whole.size();
    return bytes.substr(0, n) == whole.substr(0, n);
}

std::vector<std::string_view> splitSpaces(std::string_view line) {
    std::vector<std::string_view> fields;
    std::size_t start = 0;
    for (;;) {
        const std::size_t sp = line.find(' ', start);
        fields.push_back(line.substr(start, sp == std::string_view::npos ? std::string_view::npos : sp - start));
        if (sp == std::string_view::npos) {
            return fields;
        }
        start = sp + 1;
    }
}

// A v1 port: 1 to 5 decimal digits, at most 65535.
bool parsePort(std::string_view text, int& port) {
    if (text.empty() || text.size() > 5) {
        return false;
    }
    int value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') {
            return false;
        }
        value = value * 10 + (c - '0');
    }
    if (value > 65535) {
        return false;
    }
    port = value;
    return true;
}

// A v1 address of the family the line named.  Only the characters of a literal address:
// parseIpAddress alone would also take "[...]" and a "%zone".
bool parseAddress(std::string_view text, bool v6, IpAddress& out) {
    for (char c : text) {
        const bool ok = (c >= '0' && c <= '9') || c == '.' ||
                        (v6 && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':'));
        if (!ok) {
            return false;
        }
    }
    if (v6 != (text.find(':') != std::string_view::npos)) {
        return false;
    }
    const auto addr = parseIpAddress(text);
    if (!addr) {
        return false;
    }
    out = *addr;  // "::ffff:a.b.c.d" under TCP6 comes back as IPv4, as Postfix normalises it
    return true;
}

ProxyParse parseV1(std::string_view bytes) {
    if (!couldBe(bytes, kV1Prefix)) {
        return invalid("not a PROXY header");
    }
    const std::size_t lf = bytes.substr(0, kV1Max).find('\n');
    if (lf == std::string_view::npos) {
        if (bytes.size() >= kV1Max) {
            return invalid("v1 header longer than 107 bytes");
        }
        ProxyParse more;  // NeedMore
        return more;
    }
    if (lf == 0 || bytes[lf - 1] != '\r') {
        return invalid("v1 header not ended by CRLF");
    }
    const std::string_view line = bytes.substr(0, lf - 1);
    for (unsigned char c : line) {
        if (c < 0x20 || c >= 0x7f) {
            return invalid("v1 header holds a control character");
        }
    }
    const auto f = splitSpaces(line);
    if (f.size() >= 2 && f[1] == "UNKNOWN") {
        return invalid("v1 UNKNOWN carries no customer address");
    }
    if (f.size() != 6 || f[0] != "PROXY" || (f[1] != "TCP4" && f[1] != "TCP6")) {
        return invalid("malformed v1 header");
    }
    ProxyParse p;
    const bool v6 = f[1] == "TCP6";
    if (!parseAddress(f[2], v6, p.header.source) || !parseAddress(f[3], v6, p.header.destination)) {
        return invalid("bad address in v1 header");
    }
    if (!parsePort(f[4], p.header.sourcePort) || !parsePort(f[5], p.header.destinationPort)) {
        return invalid("bad port in v1 header");
    }
    p.status = ProxyParse::Status::Done;
    p.length = lf + 1;
    p.header.version = 1;
    return p;
}

IpAddress readAddress(const unsigned char* at, bool v6) {
    IpAddress a;
    a.v6 = v6;
    std::memcpy(a.bytes.data(), at, v6 ? 16 : 4);
    if (v6) {
        // IPv4-mapped: the same normalisation as everywhere else (parseIpAddress).
        if (auto plain = parseIpAddress(formatIpAddress(a))) {
            a = *plain;
        }
    }
    return a;
}

int readPort(const unsigned char* at) { return (at[0] << 8) | at[1]; }

ProxyParse parseV2(std::string_view bytes) {
    if (!couldBe(bytes, std::string_view(kV2Signature, kV2SignatureLen))) {
        return invalid("not a PROXY header");
    }
    if (bytes.size() < kV2FixedLen) {
        return ProxyParse{};
    }
    const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
    if ((b[12] & 0xF0) != kV2Version) {
        return invalid("unsupported v2 version");
    }
    const unsigned command = b[12] & 0x0F;
    if (command != kV2CmdLocal && command != kV2CmdProxy) {
        return invalid("unsupported v2 command");
    }
    const std::size_t len = (static_cast<std::size_t>(b[14]) << 8) | b[15];
    if (kV2FixedLen + len > kProxyHeaderMax) {
        return invalid("v2 header longer than " + std::to_string(kProxyHeaderMax) + " bytes");
    }
    if (bytes.size() < kV2FixedLen + len) {
        return ProxyParse{};
    }
    ProxyParse p;
    p.header.version = 2;
    p.length = kV2FixedLen + len;
    if (command == kV2CmdLocal) {
        p.header.local = true;  // the family and any address block are ignored (spec 2.2)
        p.status = ProxyParse::Status::Done;
        return p;
    }
    const unsigned family = b[13];
    if (family != kV2Tcp4 && family != kV2Tcp6) {
        return invalid("v2 PROXY over an address family other than TCP/IPv4 or TCP/IPv6");
    }
    const bool v6 = family == kV2Tcp6;
    if (len < (v6 ? kV2Inet6Len : kV2Inet4Len)) {
        return invalid("v2 address block too short");
    }
    const unsigned char* a = b + kV2FixedLen;
    const std::size_t n = v6 ? 16 : 4;
    p.header.source = readAddress(a, v6);
    p.header.destination = readAddress(a + n, v6);
    p.header.sourcePort = readPort(a + 2 * n);
    p.header.destinationPort = readPort(a + 2 * n + 2);
    p.status = ProxyParse::Status::Done;  // TLVs after the addresses are skipped
    return p;
}

void putAddress(std::string& out, const IpAddress& a, bool v6) {
    out.append(reinterpret_cast<const char*>(a.bytes.data()), v6 ? 16 : 4);
}

void putPort(std::string& out, int port) {
    out += static_cast<char>((port >> 8) & 0xFF);
    out += static_cast<char>(port & 0xFF);
}

}  // namespace

ProxyParse parseProxyHeader(std::string_view bytes) {
    if (bytes.empty()) {
        return ProxyParse{};
    }
    if (bytes.size() > kProxyHeaderMax) {
        bytes = bytes.substr(0, kProxyHeaderMax);  // a header never reaches past the bound
    }
    return bytes[0] == 'P' ? parseV1(bytes) : parseV2(bytes);
}

std::string buildProxyHeaderV2(const ProxyHeader& header) {
    std::string out(kV2Signature, kV2SignatureLen);
    if (header.local) {
        out += static_cast<char>(kV2Version | kV2CmdLocal);
        out += '\0';  // UNSPEC
        out += '\0';
        out += '\0';  // no address block
        return out;
    }
    const bool v6 = header.source.v6;
    // A destination of the other family cannot be said in one block: the unspecified address.
    const IpAddress destination = header.destination.v6 == v6 ? header.destination : IpAddress{v6, {}};
    const int destinationPort = header.destination.v6 == v6 ? header.destinationPort : 0;
    out += static_cast<char>(kV2Version | kV2CmdProxy);
    out += static_cast<char>(v6 ? kV2Tcp6 : kV2Tcp4);
    const std::size_t len = v6 ? kV2Inet6Len : kV2Inet4Len;
    out += static_cast<char>(len >> 8);
    out += static_cast<char>(len & 0xFF);
    putAddress(out, header.source, v6);
    putAddress(out, destination, v6);
    putPort(out, header.sourcePort);
    putPort(out, destinationPort);
    return out;
}

}  // namespace subproxy
