// Addresses of an accepted connection: the customer, and the address it dialled before the
// firewall redirected it to us (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST for REDIRECT and DNAT,
// getsockname() for TPROXY and connections that were not redirected).
#pragma once
#include <sys/socket.h>

#include <string>

#include "wire/cidr.h"

namespace subproxy {

// Read once from the kernel's sockaddr: the value for the access list, the guard and the bans,
// the text for logs and XCLIENT.  Nothing parses the text back.
struct Endpoint {
    IpAddress ip;         // "::ffff:1.2.3.4" normalised to IPv4 1.2.3.4
    std::string address;  // its numeric text (formatIpAddress)
    int port = 0;
};

Endpoint endpointOf(const struct sockaddr* sa);

struct Destination {
    Endpoint dialled;    // where the customer meant to go
    Endpoint local;      // where the socket actually landed (our listener)
    bool redirected = false;  // netfilter rewrote the destination
};

Destination originalDestination(int fd);

}  // namespace subproxy
