//! A fleet on one machine: a collector and two hosts, each a network
//! namespace (192.0.2.1, .2, .3) with its own host name (`unshare --uts`)
//! and its own real rsyslogd, configured with contrib/fleet's drop-ins
//! (paths rewritten into the test's directory). sshd's lines are written
//! with `logger` to each host's own log socket, travel over RELP with TLS
//! (certificates made here with openssl, checked by name), and land in the
//! collector's one file, where the existing `badguys sync` reads them: host
//! names kept, kex pairs keyed by host and pid, RFC 5424 senders and
//! fractional seconds read, and lines spooled while the collector was down
//! delivered after its restart and counted once. The list comes back: the
//! collector's `badguys export` signed with signify, served over HTTPS
//! (`openssl s_server -WWW`), pulled by host 2 with curl and included into
//! its nftables set; a stopped collector leaves host 2 its last list
//! (warned about once stale), an older serial and a tampered copy are
//! refused.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::firewall_nft::Netns;
use crate::harness::*;

const COLLECTOR: &str = "192.0.2.1";

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().unwrap();
    assert!(st.success(), "ip {args:?}");
}

fn rsyslog_module(name: &str) -> bool {
    ["/usr/lib/x86_64-linux-gnu/rsyslog", "/usr/lib/aarch64-linux-gnu/rsyslog", "/usr/lib/rsyslog"]
        .iter()
        .any(|d| Path::new(d).join(name).exists())
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA and, for each name, `NAME.pem` and `NAME.key` signed by it with
/// the name as subjectAltName (server and client use).
fn certificates(dir: &Path, names: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut a = vec!["req", "-x509"];
    a.extend(ec);
    a.extend(["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=badguys fleet test CA"]);
    a.extend(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    openssl(dir, &a);
    for n in names {
        let (key, csr, pem, ext) = (format!("{n}.key"), format!("{n}.csr"), format!("{n}.pem"), format!("{n}.ext"));
        std::fs::write(
            dir.join(&ext),
            format!("subjectAltName=DNS:{n}\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature\n"),
        )
        .unwrap();
        let subj = format!("/CN={n}");
        let mut a = vec!["req"];
        a.extend(ec);
        a.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(dir, &a);
        openssl(
            dir,
            &["x509", "-req", "-in", &csr, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", &pem]
                .into_iter()
                .chain(["-days", "2", "-extfile", &ext])
                .collect::<Vec<_>>(),
        );
    }
}

/// `text` with each `(from, to)` replaced; every `from` must be there, so
/// a changed contrib file cannot silently leave the test on defaults.
fn rewrite(mut text: String, subs: &[(&str, String)]) -> String {
    for (from, to) in subs {
        assert!(text.contains(from), "contrib/fleet no longer contains {from:?}");
        text = text.replace(from, to);
    }
    text
}

/// One node: a namespace, a directory, a config, and its rsyslogd.
struct Node {
    name: &'static str,
    ns: Netns,
    dir: PathBuf,
    conf: PathBuf,
    daemon: Option<Daemon>,
}

impl Node {
    fn socket(&self) -> PathBuf {
        self.dir.join("log.sock")
    }

    fn start(&mut self) {
        let pidfile = self.dir.join("rsyslogd.pid");
        let _ = std::fs::remove_file(&pidfile);
        let script = format!(
            "echo {} > /proc/sys/kernel/hostname && exec rsyslogd -n -f {} -i {}",
            self.name,
            self.conf.display(),
            pidfile.display()
        );
        let mut c = self.ns.cmd("unshare", ["--uts", "sh", "-c", &script]);
        c.env_remove("RSYSLOG_DEBUG");
        let n = self.dir.read_dir().map_or(0, |d| d.count());
        self.daemon = Some(Daemon::spawn(c, self.dir.join(format!("stderr.{n}"))));
    }

    fn stop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.stop();
        }
    }

    /// `logger` as sshd with `pid`, into this node's own socket.
    fn log(&self, pid: u32, msg: &str) {
        let sock = self.socket();
        wait_for(20, "the rsyslogd log socket", || sock.exists());
        let st = Command::new("logger")
            .arg("-u")
            .arg(&sock)
            .args(["-t", "sshd", &format!("--id={pid}"), "-p", "auth.info", "--", msg])
            .status()
            .unwrap();
        assert!(st.success(), "logger into {}", sock.display());
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// Polls `cond` for up to `secs`; on a timeout the panic shows every
/// node's rsyslogd output and the collector's file.
fn wait(nodes: &[Node], secs: u64, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        if start.elapsed().as_secs() >= secs {
            let mut diag = String::new();
            for n in nodes {
                for f in n.dir.read_dir().unwrap().flatten() {
                    if f.file_name().to_string_lossy().starts_with("stderr") || f.file_name() == "fleet.log" {
                        diag += &format!("== {} {}:\n{}\n", n.name, f.file_name().to_string_lossy(), read(&f.path()));
                    }
                }
            }
            for n in nodes {
                let ss = Command::new("ip").args(["netns", "exec", &n.ns.name, "ss", "-tnap"]).output().unwrap();
                diag += &format!("== {} ss:\n{}\n", n.name, String::from_utf8_lossy(&ss.stdout));
                let work: Vec<_> = n.dir.join("work").read_dir().unwrap().flatten().map(|f| f.file_name()).collect();
                diag += &format!("== {} work: {work:?}\n", n.name);
            }
            panic!("timed out after {secs}s waiting for {what}\n{diag}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

fn wait_line(nodes: &[Node], file: &Path, needle: &str, what: &str) -> Duration {
    let d = wait(nodes, 40, what, || read(file).contains(needle));
    eprintln!("fleet: {what}: {d:?}");
    d
}

/// `openssl s_client` from `ns` to the collector's imtcp TLS port, sending
/// `data`, with the client certificate `cert` (a name in `tls`) or none.
fn s_client(ns: &Netns, tls: &Path, cert: Option<&str>, data: &str) {
    let mut sc = ns.cmd(
        "openssl",
        [
            "s_client",
            "-quiet",
            "-no_ign_eof",
            "-connect",
            "192.0.2.1:6514",
            "-servername",
            "collector.fleet.example",
            "-verify_return_error",
            "-verify_hostname",
            "collector.fleet.example",
        ],
    );
    sc.arg("-CAfile").arg(tls.join("ca.pem"));
    if let Some(c) = cert {
        sc.arg("-cert").arg(tls.join(format!("{c}.pem"))).arg("-key").arg(tls.join(format!("{c}.key")));
    }
    let mut child = sc
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A refused handshake may close the pipe before the write.
    let _ = std::io::Write::write_all(child.stdin.as_mut().unwrap(), data.as_bytes());
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    if cert.is_some() {
        assert!(out.status.success(), "openssl s_client: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Whether `ip` is in the IPv4 host set of `ns`: single addresses live in
/// the plain hash set, networks in the interval set `badguys4`.
fn in_set(ns: &Netns, ip: &str) -> bool {
    run(ns.cmd("nft", ["get", "element", "inet", "badguys", "badguys4_hosts", &format!("{{ {ip} }}")])).code == 0
}

fn signify_bin() -> Option<PathBuf> {
    which("signify-openbsd").or_else(|| which("signify"))
}

/// `openssl s_server -WWW` in `ns`: serves the files of `www` over HTTPS
/// on 8443 with the collector's certificate; stopped when dropped.
struct Https {
    _server: Daemon,
}

impl Https {
    fn start(ns: &Netns, tls: &Path, www: &Path, log: PathBuf) -> Https {
        let mut c = ns.cmd("openssl", ["s_server", "-quiet", "-WWW", "-accept", "8443"]);
        c.arg("-cert").arg(tls.join("collector.fleet.example.pem"));
        c.arg("-key").arg(tls.join("collector.fleet.example.key"));
        c.current_dir(www);
        let d = Https { _server: Daemon::spawn(c, log) };
        wait_for(20, "the HTTPS server listening", || {
            let ss = Command::new("ip").args(["netns", "exec", &ns.name, "ss", "-tln"]).output().unwrap();
            String::from_utf8_lossy(&ss.stdout).contains(":8443 ")
        });
        d
    }
}

/// The publish job on the collector: `badguys export`, `signify -S -e`,
/// renamed into the served directory. Returns the serial.
fn publish(e: &Env, signify: &Path, www: &Path) -> u64 {
    let r = e.command(&["export"]);
    r.ok();
    let head = r.stdout.lines().next().unwrap_or_default().to_string();
    let serial = head.split_whitespace().find_map(|w| w.strip_prefix("serial=")).unwrap().parse().unwrap();
    e.write("export", &r.stdout);
    let st = Command::new(signify)
        .args(["-S", "-e", "-s"])
        .arg(e.path("fleet.sec"))
        .arg("-m")
        .arg(e.path("export"))
        .arg("-x")
        .arg(www.join("list.sig.tmp"))
        .status()
        .unwrap();
    assert!(st.success(), "signify -S -e");
    std::fs::rename(www.join("list.sig.tmp"), www.join("list.sig")).unwrap();
    serial
}

/// The pull job on a host: curl into a temp file beside `dest`, renamed
/// into place; false (and `dest` untouched) when the fetch fails.
fn pull(ns: &Netns, tls: &Path, dest: &Path) -> bool {
    let tmp = dest.with_extension("tmp");
    let mut c = ns.cmd("curl", ["--fail", "--silent", "--show-error", "--max-time", "5", "--proto", "=https"]);
    c.args(["--resolve", "collector.fleet.example:8443:192.0.2.1", "--cacert"]).arg(tls.join("ca.pem"));
    c.arg("-o").arg(&tmp).arg("https://collector.fleet.example:8443/list.sig");
    let ok = c.status().unwrap().success();
    if ok {
        std::fs::rename(&tmp, dest).unwrap();
    } else {
        let _ = std::fs::remove_file(&tmp);
    }
    ok
}

#[test]
fn rsyslog_fleet_carries_every_hosts_lines_to_one_file() {
    let ok = require("root", is_root())
        && require("rsyslogd (Debian package rsyslog)", have("rsyslogd"))
        && require("rsyslog-relp", rsyslog_module("imrelp.so") && rsyslog_module("omrelp.so"))
        && require("rsyslog-gnutls", rsyslog_module("lmnsd_gtls.so"))
        && require("openssl", have("openssl"))
        && require("logger and unshare (util-linux)", have("logger") && have("unshare"))
        && require("ip (iproute2)", have("ip"))
        && require("curl", have("curl"))
        && require("signify (Debian package signify-openbsd)", signify_bin().is_some())
        && require("nft (Debian package nftables)", have("nft"));
    if !ok {
        return;
    }
    let started = Instant::now();
    let e = Env::new();
    let collector_conf = std::fs::read_to_string(repo_file("contrib/fleet/rsyslog-collector.conf")).unwrap();
    let sender_conf = std::fs::read_to_string(repo_file("contrib/fleet/rsyslog-sender.conf")).unwrap();
    let tls = e.path("tls");
    certificates(&tls, &["collector.fleet.example", "host1.fleet.example", "host2.fleet.example"]);

    // The network: the collector has a veth to each host.
    let id = std::process::id() % 100000;
    let mut nodes: Vec<Node> = Vec::new();
    for (name, tag) in [("collector", "fc"), ("host1", "f1"), ("host2", "f2")] {
        let dir = e.path(name);
        std::fs::create_dir_all(dir.join("work")).unwrap();
        nodes.push(Node { name, ns: Netns::new(tag), conf: dir.join("rsyslog.conf"), dir, daemon: None });
    }
    for (i, addr) in [(1usize, "192.0.2.2"), (2, "192.0.2.3")] {
        let (c, h) = (format!("bgfc{i}{id}"), format!("bgfh{i}{id}"));
        let (cns, hns) = (&nodes[0].ns.name, &nodes[i].ns.name);
        ip(&["link", "add", &c, "netns", cns, "type", "veth", "peer", "name", &h, "netns", hns]);
        ip(&["-n", cns, "addr", "add", &format!("{COLLECTOR}/32"), "dev", &c]);
        ip(&["-n", cns, "link", "set", &c, "up"]);
        ip(&["-n", cns, "route", "add", &format!("{addr}/32"), "dev", &c]);
        ip(&["-n", hns, "addr", "add", &format!("{addr}/24"), "dev", &h]);
        ip(&["-n", hns, "link", "set", &h, "up"]);
    }
    for n in &nodes {
        ip(&["-n", &n.ns.name, "link", "set", "lo", "up"]);
    }

    // Configs: a node header (own socket, work directory) + the contrib drop-in.
    let fleet = e.path("collector/fleet.log");
    let raw = e.path("collector/raw.log");
    let tlsdir = format!("{}/", tls.display());
    for n in nodes.iter() {
        let head = format!(
            "global(workDirectory=\"{}\")\nmodule(load=\"imuxsock\" SysSock.Use=\"off\")\n\
             input(type=\"imuxsock\" Socket=\"{}\")\n",
            n.dir.join("work").display(),
            n.socket().display()
        );
        let body = if n.name == "collector" {
            // The frames as received too, for the RFC 5424 shape.
            let head_raw = "template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n";
            let action = "action(type=\"omfile\" file=\"/var/log/fleet.log\" template=\"badguysFleet\")";
            head_raw.to_string()
                + &rewrite(
                    collector_conf.clone(),
                    &[
                        (
                            action,
                            format!(
                                "{action}\n        action(type=\"omfile\" file=\"{}\" template=\"raw\")",
                                raw.display()
                            ),
                        ),
                        ("/var/log/fleet.log", fleet.display().to_string()),
                        ("/etc/rsyslog.d/fleet-tls/collector.", format!("{tlsdir}collector.fleet.example.")),
                        ("/etc/rsyslog.d/fleet-tls/", tlsdir.clone()),
                    ],
                )
        } else {
            let mut subs = vec![
                ("target=\"collector.fleet.example\"", format!("target=\"{COLLECTOR}\"")),
                ("/etc/rsyslog.d/fleet-tls/host.", format!("{tlsdir}{}.fleet.example.", n.name)),
                ("/etc/rsyslog.d/fleet-tls/", tlsdir.clone()),
                // Retry every second, not every ten: the test is bounded.
                ("action.resumeInterval=\"10\"", "action.resumeInterval=\"1\"".to_string()),
                // A frame sent into a connection the stopped collector had
                // closed waits this long for its answer (default 90 s).
                ("name=\"badguysFleet\"", "name=\"badguysFleet\" timeout=\"3\"".to_string()),
            ];
            if n.name == "host2" {
                subs.push(("template=\"RSYSLOG_ForwardFormat\"", "template=\"RSYSLOG_SyslogProtocol23Format\"".into()));
            }
            rewrite(sender_conf.clone(), &subs)
        };
        std::fs::write(&n.conf, head + &body).unwrap();
        let check = Command::new("rsyslogd").arg("-N1").arg("-f").arg(&n.conf).output().unwrap();
        assert!(check.status.success(), "rsyslogd -N1 {}: {}", n.name, String::from_utf8_lossy(&check.stderr));
    }
    for n in nodes.iter_mut() {
        n.start();
    }

    // An attacker seen only by host 1, another only by host 2.
    let t0 = Instant::now();
    nodes[1].log(4001, "Invalid user admin from 192.0.2.66 port 40001");
    nodes[2].log(4002, "Invalid user oracle from 198.51.100.77 port 40002");
    let first = wait(&nodes, 40, "both hosts' first lines at the collector", || {
        let f = read(&fleet);
        f.contains("192.0.2.66") && f.contains("198.51.100.77")
    });
    eprintln!("fleet: first lines of both hosts at the collector after {first:?} (rsyslogd start included)");

    // Kex pairs across hosts: the same pid on two hosts is two processes.
    nodes[1].log(777, "error: kex_exchange_identification: read: Connection reset by peer");
    wait_line(&nodes, &fleet, "host1 sshd[777]: error: kex", "host 1's kex error");
    nodes[2].log(777, "Connection reset by 203.0.113.9 port 40003");
    wait_line(&nodes, &fleet, "203.0.113.9", "host 2's unrelated reset");
    nodes[1].log(777, "Connection reset by 203.0.113.10 port 40004");
    wait_line(&nodes, &fleet, "203.0.113.10", "host 1's reset");

    let text = read(&fleet);
    let shape = |host: &str, pid: u32, msg: &str| {
        text.lines().any(|l| {
            let mut w = l.splitn(3, ' ');
            let (stamp, h, rest) = (w.next().unwrap_or(""), w.next().unwrap_or(""), w.next().unwrap_or(""));
            // RFC 3339 with a fraction (sub-second stamps survive the trip).
            stamp.len() > 20
                && stamp.as_bytes()[10] == b'T'
                && stamp.as_bytes()[19] == b'.'
                && h == host
                && rest == format!("sshd[{pid}]: {msg}")
        })
    };
    assert!(shape("host1", 4001, "Invalid user admin from 192.0.2.66 port 40001"), "collector file:\n{text}");
    assert!(shape("host2", 4002, "Invalid user oracle from 198.51.100.77 port 40002"), "collector file:\n{text}");

    let r = e.sync(&["--log", fleet.to_str().unwrap()]);
    r.ok();
    let list = e.read("badguys");
    assert_eq!(lines(&list), ["192.0.2.66", "198.51.100.77", "203.0.113.10"], "{}\n{text}", r.stderr);

    // Host 2 speaks RFC 5424: its frames as received parse too.
    let rawtext = read(&raw);
    assert!(rawtext.lines().any(|l| l.starts_with("<38>1 ") && l.contains(" host2 sshd 4002 ")), "raw:\n{rawtext}");
    let e2 = Env::new();
    e2.sync(&["--log", raw.to_str().unwrap()]).ok();
    assert!(lines(&e2.read("badguys")).contains(&"198.51.100.77"), "raw:\n{rawtext}");

    // OpenBSD syslogd's frame over TLS to the imtcp listener, as `syslogd
    // -h -Z` sends it (octet counting: `LEN <PRI>STAMP HOST MSG`), from host
    // 1's namespace with host 1's client certificate.
    let stamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
    let frame = format!("<38>{stamp} bsd1 sshd-session[6001]: Invalid user bsd from 192.0.2.95 port 60001");
    let framed = format!("{} {frame}", frame.len());
    // First without a client certificate: refused (permittedPeer).
    let anon = format!("<38>{stamp} anon sshd[6002]: Invalid user anon from 192.0.2.96 port 60002");
    s_client(&nodes[1].ns, &tls, None, &format!("{} {anon}", anon.len()));
    s_client(&nodes[1].ns, &tls, Some("host1.fleet.example"), &framed);
    wait_line(&nodes, &fleet, "192.0.2.95", "OpenBSD-shaped frame over TLS");
    let text = read(&fleet);
    assert!(
        text.lines().any(|l| l.ends_with(" bsd1 sshd-session[6001]: Invalid user bsd from 192.0.2.95 port 60001")),
        "{text}"
    );
    e.sync(&["--log", fleet.to_str().unwrap()]).ok();
    assert!(lines(&e.read("badguys")).contains(&"192.0.2.95"));
    assert!(!text.contains("192.0.2.96"), "a client without a certificate was accepted:\n{text}");

    // The signed list: served over HTTPS from the collector's namespace,
    // pulled by host 2 into its nftables set. An attacker only host 1 saw.
    let signify = signify_bin().unwrap();
    let pubkey = e.path("fleet.pub");
    let st = Command::new(&signify)
        .args(["-G", "-n", "-c", "fleet test key", "-p"])
        .arg(&pubkey)
        .arg("-s")
        .arg(e.path("fleet.sec"))
        .status()
        .unwrap();
    assert!(st.success(), "signify -G");
    let www = e.path("www");
    std::fs::create_dir_all(&www).unwrap();
    let mut https = Some(Https::start(&nodes[0].ns, &tls, &www, e.path("s_server.log")));
    let h2 = Env::new();
    h2.write("auth.log", "");
    let ruleset = repo_file("contrib/nftables/badguys.nft");
    nodes[2].ns.nft(&["-f", ruleset.to_str().unwrap()]);
    let include = h2.path("fleet.list");
    let host2_sync = |ns: &Netns, extra: &[&str]| {
        let mut a = vec!["--firewall", "nftables", "--include", include.to_str().unwrap()];
        a.extend(["--include-key", pubkey.to_str().unwrap()]);
        a.extend_from_slice(extra);
        run(ns.cmd(BIN, h2.sync_args(&a)))
    };
    let attack = Instant::now();
    nodes[1].log(4100, "Invalid user fleet from 192.0.2.67 port 41000");
    wait_line(&nodes, &fleet, "192.0.2.67", "host 1's attack at the collector");
    e.sync(&["--log", fleet.to_str().unwrap()]).ok();
    let first_serial = publish(&e, &signify, &www);
    pull(&nodes[2].ns, &tls, &include).then_some(()).expect("host 2 pulls the list");
    host2_sync(&nodes[2].ns, &[]).ok().stderr_has("nftables reloaded");
    assert!(in_set(&nodes[2].ns, "192.0.2.67"), "host 2's set: {:?}", nodes[2].ns.set("badguys4_hosts"));
    eprintln!("fleet: attack line on host 1 to host 2's nftables set: {:?}", attack.elapsed());
    let signed_first = std::fs::read(www.join("list.sig")).unwrap();

    // The collector goes down; both hosts keep logging; it comes back.
    nodes[0].stop();
    drop(https.take());
    // Host 2 cannot pull: its last list stays in its set, and once older
    // than --include-max-age it is warned about.
    assert!(!pull(&nodes[2].ns, &tls, &include), "pulled from a stopped collector");
    std::thread::sleep(Duration::from_millis(3100));
    host2_sync(&nodes[2].ns, &["--include-max-age", "2"]).ok().stderr_has("stale");
    assert!(in_set(&nodes[2].ns, "192.0.2.67"));
    let down = Instant::now();
    nodes[1].log(5001, "Invalid user spool1 from 192.0.2.91 port 50001");
    nodes[2].log(5002, "Invalid user spool2 from 192.0.2.92 port 50002");
    // Let both senders find the collector gone and suspend their action.
    std::thread::sleep(Duration::from_secs(2));
    nodes[0].start();
    let back = Instant::now();
    // A sender finds its RELP session broken only when it next sends: a
    // line after the restart makes it reconnect and resend its window.
    wait(&nodes, 20, "the collector listening again", || {
        let ss = Command::new("ip").args(["netns", "exec", &nodes[0].ns.name, "ss", "-tln"]).output().unwrap();
        String::from_utf8_lossy(&ss.stdout).contains(":2514 ")
    });
    nodes[1].log(5003, "Invalid user probe1 from 192.0.2.93 port 50003");
    nodes[2].log(5004, "Invalid user probe2 from 192.0.2.94 port 50004");
    let after = wait(&nodes, 60, "lines spooled during the outage", || {
        let f = read(&fleet);
        ["192.0.2.91", "192.0.2.92", "192.0.2.93", "192.0.2.94"].iter().all(|a| f.contains(a))
    });
    let text = read(&fleet);
    let copies = |ip: &str| text.lines().filter(|l| l.contains(ip)).count();
    eprintln!(
        "fleet: outage of {:?}; spooled lines arrived {after:?} after the restart; copies: spool1 {}, spool2 {}, first line {}",
        back - down,
        copies("192.0.2.91"),
        copies("192.0.2.92"),
        copies("192.0.2.66"),
    );
    // Dedup of RELP resends is the collector's badguys' job (counted once
    // there); here: every spooled line arrived at least once.
    assert!(copies("192.0.2.91") >= 1 && copies("192.0.2.92") >= 1);
    let r = e.sync(&["--log", fleet.to_str().unwrap()]);
    r.ok();
    for a in ["192.0.2.91", "192.0.2.92"] {
        assert!(lines(&e.read("badguys")).contains(&a), "{a} not listed");
    }
    // Resent lines are counted once.
    let text = read(&fleet);
    let total: usize = ["192.0.2.66", "192.0.2.91", "192.0.2.92", "192.0.2.93", "192.0.2.67"]
        .iter()
        .map(|a| text.lines().filter(|l| l.contains(a)).count())
        .sum();
    for a in ["192.0.2.66", "192.0.2.91", "192.0.2.92", "192.0.2.67"] {
        e.command(&["explain", a]).ok().stdout_has("invalid-user: 1 hits");
    }
    eprintln!("fleet: {total} copies of 5 distinct lines in the collector file, each counted once");

    // Back: a newer list is taken; an older serial and a tampered copy
    // are refused, and the set keeps the list last accepted.
    let https = Https::start(&nodes[0].ns, &tls, &www, e.path("s_server.log.2"));
    let second_serial = publish(&e, &signify, &www);
    assert!(second_serial > first_serial, "{second_serial} after {first_serial}");
    assert!(pull(&nodes[2].ns, &tls, &include));
    host2_sync(&nodes[2].ns, &[]).ok();
    h2.command(&["explain", "192.0.2.91"]).ok().stdout_has(&format!("(serial {second_serial}"));
    assert!(in_set(&nodes[2].ns, "192.0.2.91"));
    std::fs::write(www.join("list.sig"), &signed_first).unwrap();
    assert!(pull(&nodes[2].ns, &tls, &include));
    host2_sync(&nodes[2].ns, &[])
        .ok()
        .stderr_has("older than the last accepted")
        .stderr_has("the last good copy stays");
    let mut tampered = std::fs::read(h2.path("fleet.list")).unwrap();
    let at = tampered.windows(10).position(|w| w == b"192.0.2.67").unwrap() + 9;
    tampered[at] = b'8';
    std::fs::write(www.join("list.sig"), &tampered).unwrap();
    assert!(pull(&nodes[2].ns, &tls, &include));
    host2_sync(&nodes[2].ns, &[]).ok().stderr_has("tampered").stderr_has("the last good copy stays");
    for a in ["192.0.2.67", "192.0.2.91"] {
        assert!(in_set(&nodes[2].ns, a), "{a} left host 2's set: {:?}", nodes[2].ns.set("badguys4_hosts"));
    }
    assert!(!in_set(&nodes[2].ns, "192.0.2.68"), "{:?}", nodes[2].ns.set("badguys4_hosts"));
    drop(https);
    for n in nodes.iter_mut() {
        n.stop();
    }
    eprintln!("fleet: whole test {:?} (first log line at {:?})", started.elapsed(), t0 - started);
}
