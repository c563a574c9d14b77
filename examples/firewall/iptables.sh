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
# MODE=redirect (default): nat REDIRECT, as above.
# MODE=tproxy: TPROXY in the mangle table instead.  The packets keep their original
#   destination; the listeners need `transparent = true;` (IP_TRANSPARENT, CAP_NET_ADMIN) and
#   subproxy reads the dialled address with getsockname().  Use it where NAT is unwanted
#   (e.g. no conntrack on a busy gateway) or to listen on one address for many destinations.
#
# Both modes also drop SMTP tunnelled in IPv6-over-IPv4 (see TUNNELS below).
#
# Usage: CUSTOMER_IF=eth1 [MODE=tproxy] sh iptables.sh
set -eu

CUSTOMER_IF=${CUSTOMER_IF:-eth1}   # interface the customers' traffic comes in on
STARTTLS_PORT=${STARTTLS_PORT:-10025}
IMPLICIT_PORT=${IMPLICIT_PORT:-10465}
MODE=${MODE:-redirect}
TPROXY_MARK=${TPROXY_MARK:-0x1}    # fwmark routing TPROXY'd packets to the local stack
TPROXY_TABLE=${TPROXY_TABLE:-100}

# TUNNELS.  A customer host with IPv6 over an IPv4 tunnel bypasses both the iptables and the
# ip6tables rules here: the gateway sees only IPv4 carrying IPv4-protocol 41 (6to4, 6in4,
# 6rd, ISATAP) or UDP (Teredo, RFC 4380: Windows' built-in tunnel, server port 3544, relays
# on any port) - the inner IPv6 TCP port 25 is never matched, and a spambot reaches remote
# MX hosts over IPv6.  It cannot be redirected (the proxy would have to decapsulate), so it
# is dropped; the mail program then falls back to IPv4 (or native IPv6), which is
# intercepted.  The u32 matches look through the IPv4 header (any length) into the inner
# IPv6 header: next header 6 (TCP) and destination port 25 or 465.  Teredo data packets
# without origin indication carry the IPv6 packet right after the 8-byte UDP header.
# (Blunt alternative, if you offer native IPv6 or 6rd yourself: drop all protocol 41 and
# UDP port 3544 from customers.)
iptables -A FORWARD -i "$CUSTOMER_IF" -p 41 \
    -m u32 --u32 "0>>22&0x3C@4>>8&0xFF=6 && 0>>22&0x3C@40&0xFFFF=25,465" -j DROP
iptables -A FORWARD -i "$CUSTOMER_IF" -p udp \
    -m u32 --u32 "0>>22&0x3C@8>>28=6 && 0>>22&0x3C@12>>8&0xFF=6 && 0>>22&0x3C@48&0xFFFF=25,465" -j DROP

if [ "$MODE" = tproxy ]; then
    for ipt in iptables ip6tables; do
        # Packets of connections that already have a (transparent) socket: deliver locally.
        $ipt -t mangle -N SUBPROXY_DIVERT
        $ipt -t mangle -A SUBPROXY_DIVERT -j MARK --set-mark "$TPROXY_MARK"
        $ipt -t mangle -A SUBPROXY_DIVERT -j ACCEPT
        $ipt -t mangle -A PREROUTING -i "$CUSTOMER_IF" -p tcp -m socket --transparent -j SUBPROXY_DIVERT
        $ipt -t mangle -A PREROUTING -i "$CUSTOMER_IF" -p tcp --dport 25 \
            -j TPROXY --on-port "$STARTTLS_PORT" --tproxy-mark "$TPROXY_MARK/$TPROXY_MARK"
        $ipt -t mangle -A PREROUTING -i "$CUSTOMER_IF" -p tcp --dport 465 \
            -j TPROXY --on-port "$IMPLICIT_PORT" --tproxy-mark "$TPROXY_MARK/$TPROXY_MARK"
    done
    # Marked packets are routed to the local stack (the original destination is not ours).
    ip -4 rule add fwmark "$TPROXY_MARK" lookup "$TPROXY_TABLE"
    ip -4 route add local 0.0.0.0/0 dev lo table "$TPROXY_TABLE"
    ip -6 rule add fwmark "$TPROXY_MARK" lookup "$TPROXY_TABLE"
    ip -6 route add local ::/0 dev lo table "$TPROXY_TABLE"
    exit 0
fi

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

# Check:   iptables -t nat -S PREROUTING; ip6tables -t nat -S PREROUTING; iptables -S FORWARD
#          (tproxy: iptables -t mangle -S PREROUTING; ip rule; ip route show table 100)
# Persist: iptables-save > /etc/iptables/rules.v4; ip6tables-save > /etc/iptables/rules.v6
