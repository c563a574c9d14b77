// The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2): what a load
// balancer in front of a listener sends before the first byte of the customer's stream, and
// what we send to an MSA that takes it instead of XCLIENT.  Pure: bytes in, result out.
//
// Accepted, as Postfix accepts them (src/global/haproxy_srvr.c): v1 "PROXY TCP4|TCP6 ...",
// v2 PROXY over TCP/IPv4 or TCP/IPv6 (TLVs skipped), and v2 LOCAL (the proxy's own health
// check: no addresses).  Refused: v1 UNKNOWN and v2 UNSPEC/UDP/UNIX, because a connection
// without the customer's address would sidestep every address-based check (the access list,
// the bans) or put the balancer's own address under them.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include "wire/cidr.h"

namespace subproxy {

// The largest header we read: a v1 line is at most 107 bytes, a v2 header with addresses
// 16 + 216; the rest leaves room for TLVs.  Postfix uses the same bound.
constexpr std::size_t kProxyHeaderMax = 536;

struct ProxyHeader {
    int version = 0;     // 1 or 2
    bool local = false;  // v2 LOCAL: no addresses; the connection's own endpoints apply
    IpAddress source;    // the customer (IPv4-mapped IPv6 is returned as IPv4)
    int sourcePort = 0;
    IpAddress destination;  // the address and port the customer dialled
    int destinationPort = 0;
};

struct ProxyParse {
    enum class Status { NeedMore, Done, Invalid };
    Status status = Status::NeedMore;
    std::size_t length = 0;  // Done: the header's size; the customer's stream starts after it
    ProxyHeader header;      // Done
    std::string error;       // Invalid: why, for the log
};

// Parses the start of a connection's stream.  NeedMore only while `bytes` is a proper prefix
// of a header that can still be valid and is under kProxyHeaderMax; anything else that is not
// a header (an SMTP command, a TLS ClientHello) is Invalid at once.
ProxyParse parseProxyHeader(std::string_view bytes);

// A v2 header: PROXY with header's addresses (TCP over the source's family; a destination of
// the other family is sent as the unspecified address of the source's, port 0), or LOCAL
// when header.local.
std::string buildProxyHeaderV2(const ProxyHeader& header);

}  // namespace subproxy
