# badguys: build, install, package.
#
# Plain POSIX make: works with OpenBSD's make, bmake and GNU make.
#
#   make                    cargo build --release
#   make install            the binary, the man page and the alert hooks
#   make install-systemd    Linux: the systemd units and badguys.nft
#   make install-rc         OpenBSD: the rc.d(8) script
#   make uninstall          removes what the three install targets install
#   make deb                the Debian package (cargo-deb), in target/debian/
#   make port               regenerates the generated files of the OpenBSD
#                           port skeleton (contrib/openbsd/port)
#
# PREFIX (/usr/local) and DESTDIR (a staging root, empty) are honoured by
# every install target.  The others can be set too:
#   SBINDIR         $(PREFIX)/sbin
#   MANDIR          $(PREFIX)/man on OpenBSD, $(PREFIX)/share/man elsewhere
#   LIBEXECDIR      $(PREFIX)/libexec  (the hooks go to .../badguys/)
#   DATADIR         $(PREFIX)/share    (badguys.nft goes to .../badguys/)
#   SYSTEMDUNITDIR  $(PREFIX)/lib/systemd/system (systemd looks there)
#   RCDIR           /etc/rc.d
#   BIN             the binary to install (target/release/badguys)
#
# The units and the rc script name the binary by its path.  Each has one
# source: the units say /usr/sbin/badguys (where the Debian package puts
# it, so cargo-deb ships them as they are) and the rc script says
# /usr/local/sbin/badguys; the install targets rewrite that path to
# $(SBINDIR) with sed.

PREFIX = /usr/local
DESTDIR =
SBINDIR = $(PREFIX)/sbin
MANDIR =
LIBEXECDIR = $(PREFIX)/libexec
DATADIR = $(PREFIX)/share
SYSTEMDUNITDIR = $(PREFIX)/lib/systemd/system
RCDIR = /etc/rc.d
BIN = target/release/badguys
CARGO = cargo
INSTALL = install

UNITS = badguys.service badguys-sync.service badguys-sync.timer badguys-reload.service
HOOKS = mail telegram

# Shell code that sets $m to the man directory (see MANDIR above).
MAN = if [ -n "$(MANDIR)" ]; then m="$(MANDIR)"; \
	elif [ "`uname -s`" = OpenBSD ]; then m="$(PREFIX)/man"; \
	else m="$(PREFIX)/share/man"; fi

all: build

build:
	$(CARGO) build --release --locked

install:
	@if [ ! -f "$(BIN)" ]; then echo "$(BIN) is missing: run make (or cargo build --release) first" >&2; exit 1; fi
	$(INSTALL) -d "$(DESTDIR)$(SBINDIR)"
	$(INSTALL) -m 0755 "$(BIN)" "$(DESTDIR)$(SBINDIR)/badguys"
	@$(MAN); set -x; \
	$(INSTALL) -d "$(DESTDIR)$$m/man8"; \
	$(INSTALL) -m 0644 badguys.8 "$(DESTDIR)$$m/man8/badguys.8"
	$(INSTALL) -d "$(DESTDIR)$(LIBEXECDIR)/badguys"
	for h in $(HOOKS); do \
		$(INSTALL) -m 0755 "contrib/hooks/$$h" "$(DESTDIR)$(LIBEXECDIR)/badguys/$$h" || exit 1; \
	done

install-systemd:
	$(INSTALL) -d "$(DESTDIR)$(SYSTEMDUNITDIR)" "$(DESTDIR)$(DATADIR)/badguys"
	for u in $(UNITS); do \
		sed 's|/usr/sbin/badguys|$(SBINDIR)/badguys|g' "contrib/nftables/$$u" \
			> "$(DESTDIR)$(SYSTEMDUNITDIR)/$$u" || exit 1; \
		chmod 0644 "$(DESTDIR)$(SYSTEMDUNITDIR)/$$u"; \
	done
	$(INSTALL) -m 0644 contrib/nftables/badguys.nft "$(DESTDIR)$(DATADIR)/badguys/badguys.nft"

install-rc:
	$(INSTALL) -d "$(DESTDIR)$(RCDIR)"
	sed 's|/usr/local/sbin/badguys|$(SBINDIR)/badguys|g' contrib/pf/badguys.rc > "$(DESTDIR)$(RCDIR)/badguys"
	chmod 0555 "$(DESTDIR)$(RCDIR)/badguys"

uninstall:
	rm -f "$(DESTDIR)$(SBINDIR)/badguys"
	@$(MAN); set -x; rm -f "$(DESTDIR)$$m/man8/badguys.8"
	for h in $(HOOKS); do rm -f "$(DESTDIR)$(LIBEXECDIR)/badguys/$$h"; done
	for u in $(UNITS); do rm -f "$(DESTDIR)$(SYSTEMDUNITDIR)/$$u"; done
	rm -f "$(DESTDIR)$(DATADIR)/badguys/badguys.nft" "$(DESTDIR)$(RCDIR)/badguys"
	rmdir "$(DESTDIR)$(LIBEXECDIR)/badguys" "$(DESTDIR)$(DATADIR)/badguys" 2>/dev/null || :

deb:
	$(CARGO) deb --locked

# The port's rc script is contrib/pf/badguys.rc with the binary's path in
# the ports' own terms; crates.inc lists Cargo.lock's crates the way
# "make modcargo-gen-crates" prints them.  tests/package.rs checks that
# both are up to date.
port:
	sed 's|/usr/local/sbin/badguys|$${TRUEPREFIX}/sbin/badguys|g' contrib/pf/badguys.rc \
		> contrib/openbsd/port/pkg/badguys.rc
	sh scripts/port-crates Cargo.lock > contrib/openbsd/port/crates.inc

.PHONY: all build install install-systemd install-rc uninstall deb port
