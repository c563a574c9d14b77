#!/bin/sh
# iptables.sh — redirect customers' outgoing SMTP to subproxy (see subproxy(8), DEPLOYMENT).
#
#   port 25  -> 10025  (subproxy listener with tls = "starttls", the default)
#   port 465 -> 10465  (subproxy listener with tls = "implicit")
#
# Run on the host that routes the customers' traffic (their gateway, or where policy routing
# sends their port 25/465 traffic).  REDIRECT delivers to the primary address of the incoming
# interface, so subproxy must listen on "0.0.0.0" and "::" (or on that address).  subproxy
# reads the address the customer dialled with SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST.
#
# Only traffic arriving on CUSTOMER_IF is redirected: subproxy's own connections to the MSA
# (port 587) and mail from the host itself are untouched.
#
# Usage: CUSTOMER_IF=eth1 sh iptables.sh
set -eu

CUSTOMER_IF=${CUSTOMER_IF:-eth1}   # interface the customers' traffic comes in on
STARTTLS_PORT=${STARTTLS_PORT:-10025}
IMPLICIT_PORT=${IMPLICIT_PORT:-10465}

for ipt in iptables ip6tables; do
    # Port 25: plain SMTP from legacy mail programs (and spambots) -> STARTTLS + AUTH.
    $ipt -t nat -A PREROUTING -i "$CUSTOMER_IF" -p tcp --dport 25 \
        -j REDIRECT --to-ports "$STARTTLS_PORT"
    # Port 465: SMTP over TLS from the first byte -> the implicit-TLS listener.
    $ipt -t nat -A PREROUTING -i "$CUSTOMER_IF" -p tcp --dport 465 \
        -j REDIRECT --to-ports "$IMPLICIT_PORT"
    # Nobody should reach the listeners directly from the customer side without a redirect
    # (that would make the "original destination" the proxy itself):
    #   $ipt -A INPUT -i "$CUSTOMER_IF" -p tcp -m multiport --dports "$STARTTLS_PORT,$IMPLICIT_PORT" \
    #       -m conntrack ! --ctstate DNAT -j DROP
done

# Check:   iptables -t nat -S PREROUTING; ip6tables -t nat -S PREROUTING
# Persist: iptables-save > /etc/iptables/rules.v4; ip6tables-save > /etc/iptables/rules.v6
