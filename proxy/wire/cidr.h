// IP addresses and CIDR blocks (IPv4 and IPv6), for trusted networks, allow/deny lists
// and grouping IPv6 clients by prefix.  Pure: no sockets, only inet_pton/inet_ntop.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace subproxy {

struct IpAddress {
    bool v6 = false;                    // false: the first 4 bytes hold the IPv4 address
    std::array<uint8_t, 16> bytes{};    // network byte order; unused bytes are zero
    unsigned bits() const { return v6 ? 128 : 32; }
    bool operator==(const IpAddress& o) const { return v6 == o.v6 && bytes == o.bytes; }
    bool operator!=(const IpAddress& o) const { return !(*this == o); }
    bool operator<(const IpAddress& o) const {
        return v6 != o.v6 ? !v6 : bytes < o.bytes;
    }
};

// "192.0.2.1", "2001:db8::1", "[2001:db8::1]".  An IPv4-mapped IPv6 address
// ("::ffff:192.0.2.1", what a dual-stack socket reports) becomes the plain IPv4 address,
// so one rule matches a client however it connected.  A zone suffix ("%eth0") is ignored.
std::optional<IpAddress> parseIpAddress(std::string_view text);

// Canonical text: dotted quad, or RFC 5952 IPv6 (inet_ntop), without brackets.
std::string formatIpAddress(const IpAddress& addr);

// addr with every bit after the first `prefix` bits cleared (prefix is clamped to bits()).
IpAddress maskIpAddress(const IpAddress& addr, unsigned prefix);

// The key a client is counted under: its IPv4 address, or its IPv6 network of `ipv6Prefix`
// bits ("2001:db8:1:2::/64"), since one IPv6 customer usually holds a whole prefix.
std::string clientKey(const IpAddress& addr, unsigned ipv6Prefix);

struct Cidr {
    IpAddress network;      // host bits are always zero
    unsigned prefix = 0;
    bool contains(const IpAddress& addr) const;
    std::string str() const;    // "192.0.2.0/24"
};

// "192.0.2.0/24", "2001:db8::/32", or a bare address (= /32 or /128).  Host bits set in
// the address are cleared ("192.0.2.7/24" is 192.0.2.0/24), as Postfix's cidr tables do
// after a warning; hostBitsSet (optional) reports it so a caller can warn too.
// "::ffff:192.0.2.0/120" becomes 192.0.2.0/24.
std::optional<Cidr> parseCidr(std::string_view text, bool* hostBitsSet = nullptr);

// A list of blocks; linear search (lists are small; a deny list of thousands could move to
// a prefix tree behind this same interface).
class CidrList {
public:
    void add(const Cidr& c) { blocks_.push_back(c); }
    // Parses and adds; false (list unchanged) if text is not a CIDR.
    bool add(std::string_view text);
    bool contains(const IpAddress& addr) const;
    // Unparseable address text never matches.
    bool contains(std::string_view addrText) const;
    // The first block containing addr, if any (for logging which rule matched).
    const Cidr* find(const IpAddress& addr) const;
    bool empty() const { return blocks_.empty(); }
    size_t size() const { return blocks_.size(); }
    const std::vector<Cidr>& blocks() const { return blocks_; }

private:
    std::vector<Cidr> blocks_;
};

}  // namespace subproxy
