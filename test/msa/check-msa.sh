#!/bin/bash
# check-msa.sh DIR PORT CERTDIR — self-test of the Postfix test MSA (postfix-msa.sh).
# Proves what the integration tests rely on: STARTTLS + AUTH PLAIN/LOGIN/CRAM-MD5 as alice
# deliver into DIR/mail with "Authenticated sender: alice", relaying without AUTH is refused,
# and XCLIENT LOGIN from 127.0.0.1 (what subproxy sends) is accepted and attributed to alice.
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 DIR PORT CERTDIR" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
dir=$1 port=$2 certdir=$(cd "$3" && pwd)
msa="$here/postfix-msa.sh"

failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

cleanup() { "$msa" stop "$dir" || true; }
trap cleanup EXIT

"$msa" start "$dir" "$port" "$certdir"
dir=$(cd "$dir" && pwd -P)

if postfix -c "$dir/etc" check >/dev/null 2>&1; then
    pass "postfix check"
else
    fail "postfix check"
fi

# delivered_with PATTERN — delivered files containing PATTERN.  Only Maildir new/: virtual(8)
# writes into tmp/ first and renames the file there when it is complete.
delivered_with() {
    find "$dir/mail" -path '*/new/*' -type f -exec grep -lF -- "$1" {} + 2>/dev/null || true
}

count_with() {
    delivered_with "$1" | wc -l
}

# wait_for PATTERN — up to 10 s for a delivered message containing PATTERN.
wait_for() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ "$(count_with "$1")" -gt 0 ] && return 0
        sleep 0.1
    done
    return 1
}

for mech in PLAIN LOGIN CRAM-MD5; do
    subject="check-msa $mech $$"
    if swaks --server 127.0.0.1 --port "$port" --tls --auth "$mech" \
        --auth-user alice --auth-password alice-secret \
        --from alice@example.com --to bob@example.com \
        --header "Subject: $subject" >"$dir/swaks-$mech.log" 2>&1 &&
        wait_for "$subject"; then
        f=$(delivered_with "$subject" | head -n 1)
        if grep -qF "(Authenticated sender: alice)" "$f"; then
            pass "AUTH $mech as alice delivered to $f with Authenticated sender: alice"
        else
            fail "AUTH $mech: delivered but no 'Authenticated sender: alice' in $f"
        fi
    else
        fail "AUTH $mech as alice (see $dir/swaks-$mech.log)"
        tail -n 15 "$dir/swaks-$mech.log" || true
    fi
done

if grep -q "sasl_method=PLAIN, sasl_username=alice$" "$dir/maillog"; then
    pass "maillog has sasl_username=alice"
else
    fail "maillog lacks sasl_username=alice"
fi

# Wrong password: 535.
if swaks --server 127.0.0.1 --port "$port" --tls --auth PLAIN \
    --auth-user alice --auth-password wrong --to bob@example.com \
    >"$dir/swaks-badpw.log" 2>&1; then
    fail "wrong password was accepted"
elif grep -q '^<~\* *535' "$dir/swaks-badpw.log"; then
    pass "wrong password refused with 535"
else
    fail "wrong password: unexpected transcript (see $dir/swaks-badpw.log)"
fi

# TLS but no AUTH: the relay restrictions must refuse (mynetworks grants nothing).
if swaks --server 127.0.0.1 --port "$port" --tls \
    --from alice@example.com --to bob@example.com \
    --header "Subject: check-msa noauth $$" >"$dir/swaks-noauth.log" 2>&1; then
    fail "mail without AUTH was accepted"
elif grep -q '^<~\* *554 5.7.1' "$dir/swaks-noauth.log"; then
    pass "mail without AUTH refused (554 5.7.1 relay access denied)"
else
    fail "mail without AUTH: unexpected transcript (see $dir/swaks-noauth.log)"
fi

# No TLS at all: MAIL must be refused (smtpd_tls_security_level = encrypt) and AUTH not offered.
if swaks --server 127.0.0.1 --port "$port" --quit-after EHLO >"$dir/swaks-plain.log" 2>&1 &&
    ! grep -q '250.AUTH' "$dir/swaks-plain.log" &&
    grep -q '250.STARTTLS' "$dir/swaks-plain.log"; then
    pass "without TLS: STARTTLS offered, AUTH not offered"
else
    fail "without TLS: unexpected EHLO (see $dir/swaks-plain.log)"
fi

# XCLIENT LOGIN from loopback, over verified TLS, as subproxy does it.
# smtplib's starttls() checks the certificate against self._host, which we set to msa.test.
xclient_ok=0
if python3 - "$port" "$certdir/ca.pem" "xclient $$" >"$dir/xclient.log" 2>&1 <<'PY'; then xclient_ok=1; fi
import smtplib, ssl, sys
port, cafile, subject = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
s = smtplib.SMTP(timeout=10, local_hostname="proxy.test")
s.set_debuglevel(1)
s.connect("127.0.0.1", port)
s._host = "msa.test"
s.ehlo()
s.starttls(context=ctx)
s.ehlo()
assert s.has_extn("xclient"), "XCLIENT not offered after STARTTLS"
code, msg = s.docmd("XCLIENT", "LOGIN=alice ADDR=192.0.2.7 PORT=40000 HELO=customer.example NAME=[UNAVAILABLE]")
assert code == 220, (code, msg)
# XCLIENT resets the session (new 220 greeting); EHLO again, as subproxy does.
s.ehlo("proxy.test")
msg = ("From: alice@example.com\r\nTo: bob@example.com\r\nSubject: %s\r\n\r\nvia XCLIENT\r\n" % subject)
s.sendmail("alice@example.com", ["bob@example.com"], msg)
s.quit()
print("XCLIENT session accepted")
PY
if [ "$xclient_ok" = 1 ] && wait_for "xclient $$"; then
    f=$(delivered_with "xclient $$" | head -n 1)
    if grep -qF "(Authenticated sender: alice)" "$f"; then
        pass "XCLIENT LOGIN=alice delivered to $f with 'Authenticated sender: alice'"
    else
        fail "XCLIENT LOGIN=alice delivered but no 'Authenticated sender: alice' in $f"
    fi
    if grep -q "client=unknown\[192.0.2.7\].*sasl_username=alice" "$dir/maillog"; then
        pass "maillog shows client=unknown[192.0.2.7] with sasl_username=alice"
    else
        fail "maillog lacks the XCLIENT client/sasl_username line"
    fi
    sed -n '1,/^$/p' "$f"
else
    fail "XCLIENT session (see $dir/xclient.log)"
    cat "$dir/xclient.log"
fi

echo "check-msa: $failures failure(s)"
[ "$failures" -eq 0 ]
