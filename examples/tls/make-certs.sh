#!/bin/sh
# Makes a CA for a group's agents and a certificate for each agent, signed by it, with
# openssl (P-256 keys):
#
#   make-certs.sh DIR NAME=SUBJECT_ALT_NAMES [NAME=SUBJECT_ALT_NAMES ...]
#   e.g. make-certs.sh tls main-1=IP:192.0.2.1,IP:198.51.100.1 backup-1=IP:192.0.2.2
#
# Writes DIR/ca.pem (every agent's [tls] ca), DIR/ca-key.pem (keep it off the servers: it
# signs new agents), and DIR/NAME.pem and DIR/NAME-key.pem (that agent's [tls] cert and key,
# mode 0600). The names list every host name or address the other agents and the operators
# use in URLs for that agent (its peer_urls): a client refuses a certificate that does not
# name the host it connected to. Each certificate serves both ends of mutual TLS (serverAuth
# and clientAuth). Run it again with new names to add agents to an existing CA.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 DIR NAME=SUBJECT_ALT_NAMES..." >&2; exit 64; }
dir=$1
shift
mkdir -p "$dir"
cd "$dir"
umask 077
if [ ! -e ca.pem ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout ca-key.pem -out ca.pem -days 3650 -subj "/CN=understudy group CA" 2>/dev/null
fi
for arg in "$@"; do
  name=${arg%%=*}
  sans=${arg#*=}
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n' \
    "$sans" >"$name.ext"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$name-key.pem" -out "$name.csr" -subj "/CN=$name" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
    -out "$name.pem" -days 825 -extfile "$name.ext" 2>/dev/null
  chmod 0644 "$name.pem"
  rm -f "$name.csr" "$name.ext"
done
chmod 0644 ca.pem
