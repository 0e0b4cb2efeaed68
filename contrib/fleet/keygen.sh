#!/bin/sh
# Makes the fleet's signing key on the collector, once:
#   /etc/signify/badguys-fleet.sec  (stays on the collector, 600)
#   /etc/signify/badguys-fleet.pub  (copied to every host, given to
#                                    badguys with --include-key)
# -n: no passphrase, since the publish job signs from cron. Rollover: make
# badguys-fleet-2, give hosts both keys (--include-key twice), switch the
# publish job, then drop the old key from the hosts.
set -eu
name=${1:-badguys-fleet}
signify=$(command -v signify || command -v signify-openbsd) || {
	echo "keygen.sh: no signify (OpenBSD base; Debian: apt install signify-openbsd)" >&2
	exit 1
}
umask 077
mkdir -p /etc/signify
"$signify" -G -n -c "badguys fleet list key $name" \
	-p "/etc/signify/$name.pub" -s "/etc/signify/$name.sec"
chmod 644 "/etc/signify/$name.pub"
echo "public key: /etc/signify/$name.pub (copy it to every host)"
