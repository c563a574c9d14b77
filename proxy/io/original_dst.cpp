// libc headers first: <linux/netfilter_ipv4.h> after <netinet/in.h> (api-facts §4).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <linux/netfilter_ipv4.h>

#include "io/original_dst.h"

#include <cstring>

#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80  // linux/netfilter_ipv6/ip6_tables.h; its includes clash
#endif

namespace subproxy {

Endpoint endpointOf(const struct sockaddr* sa) {
    Endpoint e;
    if (sa->sa_family == AF_INET) {
        auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        std::memcpy(e.ip.bytes.data(), &in->sin_addr, 4);
        e.port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            std::memcpy(e.ip.bytes.data(), &in6->sin6_addr.s6_addr[12], 4);
        } else {
            e.ip.v6 = true;
            std::memcpy(e.ip.bytes.data(), &in6->sin6_addr, 16);
        }
        e.port = ntohs(in6->sin6_port);
    } else {
        return e;  // not an IP peer: no address
    }
    e.address = formatIpAddress(e.ip);
    return e;
}

Destination originalDestination(int fd) {
    Destination d;
    sockaddr_storage local{};
    socklen_t len = sizeof local;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0) {
        d.local = endpointOf(reinterpret_cast<sockaddr*>(&local));
    }
    d.dialled = d.local;
    sockaddr_storage orig{};
    len = sizeof orig;
    // IPv6 sockets first: SO_ORIGINAL_DST on them fails with ENOENT (mirrord#3196).
    int rc = -1;
    if (local.ss_family == AF_INET6) {
        rc = getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &orig, &len);
        if (rc != 0) {
            len = sizeof orig;
            rc = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &orig, &len);  // v4-mapped peers
        }
    } else {
        rc = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &orig, &len);
    }
    if (rc == 0) {
        Endpoint e = endpointOf(reinterpret_cast<sockaddr*>(&orig));
        if (!e.address.empty()) {
            d.redirected = e.address != d.local.address || e.port != d.local.port;
            d.dialled = e;
        }
    }
    return d;
}

}  // namespace subproxy
