#!/bin/bash
# make-certs.sh DIR — self-signed test PKI for subproxy's tests and demo.
#
# Creates, with fixed names so scripts can find them:
#   ca.pem/ca.key        "subproxy test CA" (signs everything below)
#   proxy.pem/proxy.key  subproxy's server cert: proxy.test, localhost, 127.0.0.1, ::1
#   msa.pem/msa.key      the test Postfix MSA:    msa.test, localhost, 127.0.0.1, ::1
#   wrong.pem/wrong.key  valid CA signature but only wrong.test (hostname-mismatch tests)
# EC P-256 keys: generation is instant, unlike RSA.  Idempotent: does nothing when every
# file already exists, so `make certs` and repeated test runs are cheap and stable.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1
days=3650

files=(ca.pem ca.key proxy.pem proxy.key msa.pem msa.key wrong.pem wrong.key)
all_present=1
for f in "${files[@]}"; do
    [ -s "$dir/$f" ] || all_present=0
done
if [ "$all_present" = 1 ]; then
    exit 0
fi

mkdir -p "$dir"
# Build in a scratch directory and move into place at the end, so an interrupted run never
# leaves a half-made set that the idempotency check above would then accept.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umask 077

newkey() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

# CA: basicConstraints critical CA:TRUE so OpenSSL 3 accepts it as an issuer.
newkey "$work/ca.key"
openssl req -x509 -new -key "$work/ca.key" -sha256 -days "$days" \
    -subj "/O=subproxy tests/CN=subproxy test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$work/ca.pem"

# leaf NAME CN SAN — a server certificate signed by the test CA.
leaf() {
    local name=$1 cn=$2 san=$3
    newkey "$work/$name.key"
    openssl req -new -key "$work/$name.key" -subj "/O=subproxy tests/CN=$cn" \
        -out "$work/$name.csr"
    cat > "$work/$name.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$san
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
EXT
    openssl x509 -req -in "$work/$name.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
        -CAcreateserial -sha256 -days "$days" -extfile "$work/$name.ext" \
        -out "$work/$name.pem" 2>/dev/null
}

leaf proxy proxy.test "DNS:proxy.test,DNS:localhost,IP:127.0.0.1,IP:::1"
leaf msa   msa.test   "DNS:msa.test,DNS:localhost,IP:127.0.0.1,IP:::1"
leaf wrong wrong.test "DNS:wrong.test"

for f in "${files[@]}"; do
    case $f in
        *.key) chmod 600 "$work/$f" ;;   # private keys: owner only (tests run as root)
        *)     chmod 644 "$work/$f" ;;
    esac
    mv -f "$work/$f" "$dir/$f"
done
