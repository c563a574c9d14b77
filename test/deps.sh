#!/bin/bash
# deps.sh — install every Debian 12 package needed to build, test and demo subproxy.
# Fast on re-runs: apt is only touched when some package is missing.  Works as root (CI)
# and through sudo otherwise.
set -euo pipefail

packages=(
    build-essential pkg-config
    libevent-dev libssl-dev libsasl2-dev libconfig++-dev libboost-test-dev
    libhiredis-dev                                  # Redis client (libevent adapter): state.backend "redis"
    redis-server                                    # the real Redis test_shared_state.py starts (its
                                                    #   service is disabled again below)
    libsasl2-modules libsasl2-modules-db sasl2-bin    # PLAIN/LOGIN/CRAM-MD5 + sasldb, saslpasswd2
    postfix swaks curl python3 openssl              # the test MSA and real clients
    strace                                          # system calls per session (test_syscalls.py, test/bench)
    libnet-ssleay-perl libio-socket-inet6-perl      # swaks' TLS and IPv6 (only "Recommends")
    iproute2 iptables                               # namespace/REDIRECT interception tests
    groff-base mandoc                               # man page lint
    dnsmasq-base                                    # a real DNS server serving the test DNSBL zones
    haproxy                                         # a real load balancer sending PROXY v1/v2 headers (test_proxy_protocol.py)
    python3-prometheus-client nftables systemd      # metrics parser, nft example, systemd-analyze
    prometheus                                      # promtool check metrics, the reference linter of
                                                    #   /metrics (test_metrics.py); the package is the
                                                    #   whole server (~100 MB; its service is disabled
                                                    #   again below)
    man-db                                          # systemd-analyze verify checks the unit's man: links
    fail2ban                                        # fail2ban-regex and fail2ban-server (test_fail2ban.py)
    python3-systemd                                 # fail2ban's systemd backend: the shipped jails read the journal
    logrotate                                       # the shipped examples/logrotate/subproxy, run for real (test_logging.py)
    clang-16 libclang-rt-16-dev                     # libFuzzer targets run by make check (clang >= 16)
    testssl.sh                                      # TLS defaults checked as auditors do (test_tls.py)
    # Mail programs customers and applications really use (test_real_clients.py):
    s-nail                                          # Debian's mailx (bsd-mailx cannot do SMTP)
    mutt msmtp                                      # mutt's SMTP; the usual sendmail replacement
    git git-email libmailtools-perl                 # git send-email; it dies without Mail::Address,
                                                    #   only a Recommends of git-email
    perl libauthen-sasl-perl libio-socket-ssl-perl  # Net::SMTP (libnet is in perl) + AUTH + STARTTLS
    php-cli libphp-phpmailer                        # PHPMailer, as PHP web applications send mail
    nodejs node-nodemailer                          # nodemailer, as Node.js applications send mail
                                                    #   (Debian's, in /usr/share/nodejs; it does not
                                                    #   depend on nodejs itself)
    file binutils                                   # make install's stripped binary checked with file
    nginx-light libnginx-mod-mail strace            # make bench: nginx's mail proxy measured side by
                                                    #   side; system calls per session
    libpwquality-dev                                # accounts.passwords: libpwquality judges passwords
    cracklib-runtime                                #   with cracklib's dictionary (only a Recommends of
                                                    #   libcrack2; without it every check fails)
)

missing=()
for p in "${packages[@]}"; do
    # "install ok installed" only; half-configured or removed-with-config packages count as missing.
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    if [ "$status" != "install ok installed" ]; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all ${#packages[@]} packages already installed"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
else
    sudo=(sudo)
fi

echo "deps: installing ${missing[*]}"
# Postfix would otherwise ask which mail setup to use; "No configuration" leaves the system
# instance unconfigured (no main.cf) — the tests run their own private instances.
echo 'postfix postfix/main_mailer_type select No configuration' \
    | "${sudo[@]}" debconf-set-selections
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
# The prometheus package is installed for promtool only: where systemd runs, its postinst starts
# a Prometheus server, which a build or test machine does not want running.
if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
    echo "deps: stopping and disabling the prometheus service (only promtool is needed)"
    "${sudo[@]}" systemctl disable --now prometheus || true
fi
# redis-server is for test_shared_state.py, which starts its own Redis on a unix socket; the
# packaged service (port 6379) is not wanted on a build or test machine.
if [[ " ${missing[*]} " == *" redis-server "* ]] && [ -d /run/systemd/system ]; then
    echo "deps: stopping and disabling the redis-server service (the tests run their own)"
    "${sudo[@]}" systemctl disable --now redis-server || true
fi
# nginx-light is for make bench, which starts its own nginx with its own configuration; the
# packaged service (port 80) is not wanted on a build or test machine.
if [[ " ${missing[*]} " == *" nginx-light "* ]] && [ -d /run/systemd/system ]; then
    echo "deps: stopping and disabling the nginx service (make bench runs its own)"
    "${sudo[@]}" systemctl disable --now nginx || true
fi
# haproxy likewise: the tests run their own instances (test_proxy_protocol.py); the system one
# is not wanted on a build machine.
if [[ " ${missing[*]} " == *" haproxy "* ]] && [ -d /run/systemd/system ]; then
    echo "deps: stopping and disabling the haproxy service (the tests start their own)"
    "${sudo[@]}" systemctl disable --now haproxy || true
fi
