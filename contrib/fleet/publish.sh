#!/bin/sh
# The publish job, on the collector (cron every minute, or the
# badguys-fleet-publish.timer): exports the fleet's list with its header
# (`# badguys serial=… generated=… hosts=…`, inside the signed content),
# signs it with the list embedded (signify -S -e: list and signature in
# one file, so a fetch never pairs a new list with an old signature) and
# renames it into place, so the web server never serves half a file.
#   MIN_HOSTS=2: only addresses reported by at least two hosts (a single
#   compromised host then cannot get an address blocked fleet-wide).
set -eu
dir=${PUBLISH_DIR:-/var/www/htdocs/badguys}   # Linux/nginx: /var/www/badguys
key=${SIGNING_KEY:-/etc/signify/badguys-fleet.sec}
signify=$(command -v signify || command -v signify-openbsd)
tmp=$(mktemp "$dir/.list.XXXXXXXX")
trap 'rm -f "$tmp" "$tmp.sig"' EXIT INT TERM
badguys export --min-hosts "${MIN_HOSTS:-1}" > "$tmp"
"$signify" -S -e -s "$key" -m "$tmp" -x "$tmp.sig"
chmod 644 "$tmp.sig"
mv -f "$tmp.sig" "$dir/list.sig"
