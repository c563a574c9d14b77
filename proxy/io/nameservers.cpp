// See nameservers.h.
#include "io/nameservers.h"

#include "os/log.h"

namespace subproxy {

void useNameservers(evdns_base* dns, const std::vector<std::string>& nameservers, const std::string& purpose) {
    evdns_base_clear_nameservers_and_suspend(dns);
    if (nameservers.empty()) {
        // The system resolver; only the nameserver lines matter (queries use DNS_QUERY_NO_SEARCH).
        if (evdns_base_resolv_conf_parse(dns, DNS_OPTION_NAMESERVERS, "/etc/resolv.conf") != 0) {
            logWarning(purpose + ": cannot read nameservers from /etc/resolv.conf; lookups will fail");
        }
    } else {
        for (const std::string& ns : nameservers) {
            if (evdns_base_nameserver_ip_add(dns, ns.c_str()) != 0) {
                logWarning(purpose + ": cannot use nameserver " + ns);
            }
        }
    }
    evdns_base_resume(dns);
}

}  // namespace subproxy
