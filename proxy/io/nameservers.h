// Which nameservers an evdns_base of ours asks: the configured ones ("127.0.0.1:5353",
// "[::1]:53"), or the nameserver lines of /etc/resolv.conf when none are configured.  Shared by
// the DNSBL resolver and the client-name resolver, which each keep their own evdns_base.
#pragma once
#include <event2/dns.h>

#include <string>
#include <vector>

namespace subproxy {

// Replaces the nameservers of `dns`; requests in flight are kept (suspended, then resumed).
// Problems are logged with `purpose` ("dnsbl", "client_name") as the prefix.
void useNameservers(evdns_base* dns, const std::vector<std::string>& nameservers, const std::string& purpose);

}  // namespace subproxy
