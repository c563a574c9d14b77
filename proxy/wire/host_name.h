// Host names from the DNS (a PTR answer), before they reach the log and XCLIENT NAME=.
#pragma once
#include <string>
#include <string_view>

namespace subproxy {

// A syntactically valid host name, as Postfix's valid_hostname() judges a reverse answer:
// labels of letters, digits, '-' and '_' (1..63 octets, no '-' at either end), 253 octets at
// most without the trailing dot, and not all-numeric (a PTR answer "1.2.3.4" would pose as
// an address).  The trailing dot of an absolute name is accepted.
bool validHostName(std::string_view name);

// The name without its trailing dot, in lower case (what is logged, compared and sent).
std::string canonicalHostName(std::string_view name);

}  // namespace subproxy
