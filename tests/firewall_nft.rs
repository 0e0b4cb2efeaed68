//! nftables for real: a network namespace per test, the shipped ruleset
//! loaded into it with the real `nft`, `badguys` run inside it, the sets
//! read back.

use std::process::Command;
use std::time::Instant;

use crate::harness::*;

/// A network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("bgt-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).stderr(std::process::Stdio::null()).status();
        let st = Command::new("ip").args(["netns", "add", &name]).status().unwrap();
        assert!(st.success(), "ip netns add {name}");
        Netns { name }
    }

    /// `ip netns exec NAME program args…`
    pub fn cmd<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(&self, program: &str, args: I) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]).args(args);
        c
    }

    pub fn nft(&self, args: &[&str]) -> String {
        let r = run(self.cmd("nft", args.iter()));
        assert_eq!(r.code, 0, "nft {args:?}: {}", r.stderr);
        r.stdout
    }

    /// The elements of a set, as nft prints them.
    pub fn set(&self, set: &str) -> Vec<String> {
        let text = self.nft(&["list", "set", "inet", "badguys", set]);
        let Some(start) = text.find("elements = {") else { return Vec::new() };
        let body = &text[start + "elements = {".len()..];
        let body = &body[..body.find('}').unwrap()];
        let mut v: Vec<String> = body.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        // A hash set lists its elements in no particular order.
        v.sort();
        v
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

pub fn nft_available() -> bool {
    require("root", is_root())
        && require("nft (Debian package nftables)", have("nft"))
        && require("ip (iproute2)", have("ip"))
}

/// A namespace with contrib/nftables/badguys.nft loaded.
pub fn loaded(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    let ruleset = repo_file("contrib/nftables/badguys.nft");
    ns.nft(&["-f", ruleset.to_str().unwrap()]);
    ns
}

fn sync_in(ns: &Netns, e: &Env, extra: &[&str]) -> Run {
    let mut args = vec!["--firewall", "nftables"];
    args.extend_from_slice(extra);
    run(ns.cmd(BIN, e.sync_args(&args)))
}

#[test]
fn sync_puts_hosts_and_networks_in_their_sets_and_replaces_them() {
    if !nft_available() {
        return;
    }
    let ns = loaded("sync");
    // Loading the ruleset twice must work (a reload of nftables.conf).
    let ruleset = repo_file("contrib/nftables/badguys.nft");
    ns.nft(&["-f", ruleset.to_str().unwrap()]);
    let e = Env::new();
    // A network and a host inside it, in each family: the host needs no
    // element of its own.
    e.write("badguys", "203.0.113.0/24\n203.0.113.7\n2001:db8:1::/48\n2001:db8:1::7\n");
    e.write(
        "auth.log",
        sshd(1, "Invalid user a from 192.0.2.1 port 1")
            + &sshd(2, "Invalid user a from 2001:db8::1 port 1")
            + &sshd(3, "Disconnected from authenticating user root 198.51.100.3 port 1 [preauth]"),
    );
    sync_in(&ns, &e, &[]).ok().stderr_has("nftables reloaded");
    assert_eq!(ns.set("badguys4_hosts"), ["192.0.2.1", "198.51.100.3"]);
    assert_eq!(ns.set("badguys4"), ["203.0.113.0/24"]);
    assert_eq!(ns.set("badguys6_hosts"), ["2001:db8::1"]);
    assert_eq!(ns.set("badguys6"), ["2001:db8:1::/48"]);
    assert_eq!(
        lines(&e.read("badguys")),
        [
            "192.0.2.1",
            "198.51.100.3",
            "203.0.113.0/24",
            "203.0.113.7",
            "2001:db8::1",
            "2001:db8:1::/48",
            "2001:db8:1::7"
        ]
    );

    // Allowing an address takes it out of file and set: a replace, not an add.
    sync_in(&ns, &e, &["--allow", "192.0.2.1", "--allow", "2001:db8::/48"]).ok();
    assert_eq!(ns.set("badguys4_hosts"), ["198.51.100.3"]);
    assert_eq!(ns.set("badguys4"), ["203.0.113.0/24"]);
    assert_eq!(ns.set("badguys6_hosts"), Vec::<String>::new());
    assert_eq!(ns.set("badguys6"), ["2001:db8:1::/48"]);

    // Allowing everything empties all four.
    sync_in(&ns, &e, &["--allow", "0.0.0.0/0", "--allow", "::/0"]).ok();
    for set in ["badguys4_hosts", "badguys4", "badguys6_hosts", "badguys6"] {
        assert_eq!(ns.set(set), Vec::<String>::new(), "{set}");
    }
}

/// The ruleset of badguys before the host sets: one interval set per
/// family, input chain only.
const OLD_RULESET: &str = "table inet badguys {
    set badguys4 { type ipv4_addr; flags interval; auto-merge; }
    set badguys6 { type ipv6_addr; flags interval; auto-merge; }
    chain input { type filter hook input priority filter - 10; policy accept;
        ip saddr @badguys4 counter drop; ip6 saddr @badguys6 counter drop; }
}
";

/// An old table takes the shipped file as it is: the interval sets keep
/// what they held (hosts too) and stay matched, `check` says the host sets
/// are missing until then, and the next reload sorts hosts from networks.
#[test]
fn old_ruleset_upgrades_in_place() {
    if !nft_available() {
        return;
    }
    let ns = Netns::new("upgrade");
    let e = Env::new();
    let old = e.write("old.nft", OLD_RULESET);
    ns.nft(&["-f", old.to_str().unwrap()]);
    ns.nft(&["add", "element", "inet", "badguys", "badguys4", "{ 192.0.2.1, 203.0.113.0/24 }"]);
    ns.nft(&["add", "element", "inet", "badguys", "badguys6", "{ 2001:db8::1 }"]);
    e.write("auth.log", "");
    let check = |e: &Env| {
        let mut args = e.sync_args(&["--firewall", "nftables"]);
        args[0] = "check".into();
        run(ns.cmd(BIN, args))
    };
    let r = check(&e);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("badguys4_hosts") && r.stdout.contains("load the new badguys.nft"), "{}", r.stdout);

    let ruleset = repo_file("contrib/nftables/badguys.nft");
    ns.nft(&["-f", ruleset.to_str().unwrap()]);
    assert_eq!(ns.set("badguys4"), ["192.0.2.1", "203.0.113.0/24"], "kept across the upgrade");
    assert_eq!(ns.set("badguys6"), ["2001:db8::1"]);
    let chain = ns.nft(&["list", "chain", "inet", "badguys", "input"]);
    assert!(chain.contains("@badguys4 ") && chain.contains("@badguys4_hosts "), "{chain}");
    let r = check(&e);
    assert!(!r.stdout.contains("firewall"), "{}{}", r.stdout, r.stderr);

    e.write("badguys", "192.0.2.1\n203.0.113.0/24\n2001:db8::1\n");
    let out = e.out();
    run(ns.cmd(BIN, ["reload", "--out", out.to_str().unwrap(), "--firewall", "nftables"])).ok();
    assert_eq!(ns.set("badguys4_hosts"), ["192.0.2.1"]);
    assert_eq!(ns.set("badguys4"), ["203.0.113.0/24"]);
    assert_eq!(ns.set("badguys6_hosts"), ["2001:db8::1"]);
    assert_eq!(ns.set("badguys6"), Vec::<String>::new());
}

#[test]
fn missing_set_is_a_firewall_error_with_nft_stderr() {
    if !nft_available() {
        return;
    }
    let ns = Netns::new("noset");
    let e = Env::new();
    e.write("auth.log", sshd(1, "Invalid user a from 192.0.2.1 port 1"));
    sync_in(&ns, &e, &[]).code(4).stderr_has("nft -f -").stderr_has("No such file or directory");
    assert_eq!(e.read("badguys"), "192.0.2.1\n", "the file is written even when the reload fails");
}

#[test]
fn replace_of_100k_addresses_in_one_run() {
    if !nft_available() {
        return;
    }
    let ns = loaded("big");
    let e = Env::new();
    let mut list = String::new();
    // 60k IPv4 in the benchmark range 198.18.0.0/15 and 40k IPv6 in
    // 2001:db8::/32, none adjacent, so auto-merge cannot fold them.
    for i in 0..60_000u32 {
        list.push_str(&format!("{}\n", std::net::Ipv4Addr::from(0xC612_0000u32 + i * 2)));
    }
    for i in 0..40_000u32 {
        list.push_str(&format!("2001:db8:{:x}::{:x}\n", i / 100, (i % 100) * 2 + 1));
    }
    e.write("badguys", &list);
    let (out, state) = (e.out(), e.path("state"));
    let reload =
        ["reload", "--out", out.to_str().unwrap(), "--state", state.to_str().unwrap(), "--firewall", "nftables"];
    let t = Instant::now();
    let r = run(ns.cmd(BIN, reload));
    let first = t.elapsed();
    r.ok().stderr_has("100000 entries loaded into nftables");
    let t = Instant::now();
    run(ns.cmd(BIN, reload)).ok();
    let second = t.elapsed();
    let v4 = ns.set("badguys4_hosts").len();
    let v6 = ns.set("badguys6_hosts").len();
    assert_eq!((v4, v6), (60_000, 40_000));
    eprintln!("FIGURE nft replace of 100000 addresses: {first:.2?} into empty sets, {second:.2?} replacing a full set");
}

/// `badguys watch` with nftables: each appended attack line puts its
/// address in the set. Reports p50/p99 of line-written to element-present
/// over 200 events; the assertion is only a generous timeout.
#[test]
fn watch_adds_each_attacker_to_the_set_quickly() {
    if !nft_available() {
        return;
    }
    use std::io::Write;
    let ns = loaded("watch");
    let e = Env::new();
    e.write("auth.log", "");
    let args = e.watch_args(&["--firewall", "nftables"]);
    let mut d = Daemon::spawn(ns.cmd(BIN, args), e.path("watch.err"));
    wait_for(10, "the first sync", || e.path("badguys").exists());
    let mut log = std::fs::OpenOptions::new().append(true).open(e.log()).unwrap();
    let mut lat = Vec::new();
    for i in 0..200u32 {
        // No two adjacent, so auto-merge keeps one element per address.
        let k = i - i / 4;
        let ip = match (i % 4, k) {
            (3, _) => format!("2001:db8:1::{:x}", 2 * i + 1),
            (_, k) if k < 100 => format!("198.51.100.{}", 2 * k + 1),
            (_, k) => format!("192.0.2.{}", 2 * (k - 100) + 1),
        };
        let set = if ip.contains(':') { "badguys6_hosts" } else { "badguys4_hosts" };
        let t = Instant::now();
        log.write_all(sshd(i, &format!("Invalid user u{i} from {ip} port 1")).as_bytes()).unwrap();
        while run(ns.cmd("nft", ["get", "element", "inet", "badguys", set, &format!("{{ {ip} }}")])).code != 0 {
            assert!(t.elapsed().as_secs() < 10, "{ip} not in {set} after 10 s:\n{}", d.log());
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        lat.push(t.elapsed());
    }
    assert_eq!(d.stop(), 0, "{}", d.log());
    lat.sort();
    let pct = |p: usize| lat[(lat.len() * p / 100).min(lat.len() - 1)];
    eprintln!(
        "FIGURE watch line-to-nft-set latency over {} events: p50 {:.1?}, p99 {:.1?}, max {:.1?}",
        lat.len(),
        pct(50),
        pct(99),
        lat[lat.len() - 1]
    );
    assert_eq!(ns.set("badguys4_hosts").len() + ns.set("badguys6_hosts").len(), 200);
}

/// `ip -n NS args…`, which must succeed.
fn ip_in(ns: &Netns, args: &[&str]) {
    let mut c = Command::new("ip");
    c.args(["-n", &ns.name]).args(args);
    let r = run(c);
    assert_eq!(r.code, 0, "ip -n {} {args:?}: {}", ns.name, r.stderr);
}

/// A TCP listener in `ns` (python3, as nc and socat may be missing) that
/// answers every connection with "hi"; killed on drop.
struct Listener(std::process::Child);

impl Listener {
    fn start(ns: &Netns, port: u16) -> Listener {
        use std::io::BufRead;
        let code = format!(
            "import socket\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('0.0.0.0', {port}))\ns.listen(8)\nprint('ready', flush=True)\n\
             while True:\n    c, _ = s.accept()\n    c.sendall(b'hi')\n    c.close()\n"
        );
        let mut child = ns.cmd("python3", ["-c", &code]).stdout(std::process::Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the listener did not start");
        Listener(child)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether a TCP connection from `ns` to `addr:port` gets the listener's
/// "hi" (3 s to connect: a dropped SYN is a failure, not a wait).
fn reaches(ns: &Netns, addr: &str, port: u16) -> bool {
    let code = format!(
        "import socket, sys\ntry:\n    s = socket.create_connection(('{addr}', {port}), timeout=3)\n    \
         sys.exit(0 if s.recv(2) == b'hi' else 1)\nexcept OSError:\n    sys.exit(1)\n"
    );
    run(ns.cmd("python3", ["-c", &code])).code == 0
}

/// A container's sshd behind a published port: the router namespace DNATs
/// its port 2222 to a backend namespace, as Docker does, and accepts that
/// traffic in a forward chain of its own, as Docker's rules do. Once the
/// attacker is listed, the shipped ruleset drops it on the forward path,
/// before that accept.
#[test]
fn listed_host_cannot_reach_a_dnat_published_port() {
    if !nft_available() || !require("python3", have("python3")) {
        return;
    }
    let attacker = Netns::new("fwa");
    let router = loaded("fwr");
    let backend = Netns::new("fwb");
    ip_in(&attacker, &["link", "add", "a0", "type", "veth", "peer", "name", "r0", "netns", &router.name]);
    ip_in(&backend, &["link", "add", "b0", "type", "veth", "peer", "name", "r1", "netns", &router.name]);
    for (ns, dev, addr) in [
        (&attacker, "a0", "198.51.100.2/24"),
        (&router, "r0", "198.51.100.1/24"),
        (&router, "r1", "203.0.113.1/24"),
        (&backend, "b0", "203.0.113.2/24"),
    ] {
        ip_in(ns, &["addr", "add", addr, "dev", dev]);
        ip_in(ns, &["link", "set", dev, "up"]);
        ip_in(ns, &["link", "set", "lo", "up"]);
    }
    ip_in(&attacker, &["route", "add", "default", "via", "198.51.100.1"]);
    ip_in(&backend, &["route", "add", "default", "via", "203.0.113.1"]);
    let r = run(router.cmd("sysctl", ["-qw", "net.ipv4.ip_forward=1"]));
    assert_eq!(r.code, 0, "sysctl: {}", r.stderr);
    let published = "table ip published {\n\
        chain prerouting { type nat hook prerouting priority dstnat; tcp dport 2222 dnat to 203.0.113.2:2222; }\n\
        chain forward { type filter hook forward priority filter; policy drop;\n\
            ct state established,related accept; ip daddr 203.0.113.2 tcp dport 2222 accept; }\n\
        }\n";
    let e = Env::new();
    let rules = e.write("published.nft", published);
    router.nft(&["-f", rules.to_str().unwrap()]);
    let _listener = Listener::start(&backend, 2222);

    assert!(reaches(&attacker, "198.51.100.1", 2222), "not listed yet: the published port answers");
    e.write("auth.log", sshd(1, "Invalid user a from 198.51.100.2 port 1"));
    sync_in(&router, &e, &[]).ok();
    assert_eq!(router.set("badguys4_hosts"), ["198.51.100.2"]);
    assert!(!reaches(&attacker, "198.51.100.1", 2222), "listed: the forwarded connection must fail");
    let chain = router.nft(&["list", "chain", "inet", "badguys", "forward"]);
    let v4 = chain.lines().find(|l| l.contains("@badguys4_hosts")).unwrap();
    assert!(!v4.contains("counter packets 0 "), "dropped by badguys' forward chain:\n{chain}");
}

/// `f` run in a thread that has entered `ns`'s network namespace: the
/// children it starts (nft) inherit it.
fn in_netns<T: Send + 'static>(ns: &Netns, f: impl FnOnce() -> T + Send + 'static) -> T {
    let fd = std::fs::File::open(format!("/run/netns/{}", ns.name)).unwrap();
    std::thread::spawn(move || {
        nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

fn nets(list: &[&str]) -> Vec<badguys::addr::Net> {
    let mut v: Vec<badguys::addr::Net> = list.iter().map(|s| s.parse().unwrap()).collect();
    v.sort();
    v
}

fn nft_target() -> badguys::firewall::Firewall {
    badguys::firewall::Firewall::Nftables(badguys::firewall::NftTarget {
        family: "inet".into(),
        table: "badguys".into(),
        set4: "badguys4".into(),
        set6: "badguys6".into(),
    })
}

/// A reconcile that knows the published set sends only the difference
/// (an element added by hand outside the list survives it, which a flush
/// would drop); when the kernel set was changed behind badguys' back so
/// that a `delete element` fails, the whole transaction fails and the
/// replace falls back to a flush and refill: the sets end up holding
/// exactly the new list either way.
#[test]
fn reconcile_sends_the_difference_and_falls_back_to_a_full_replace() {
    if !nft_available() {
        return;
    }
    let ns = loaded("diff");
    let old = nets(&["192.0.2.1", "192.0.2.3", "198.51.100.0/24", "2001:db8::1", "2001:db8:1::/48"]);
    let new = nets(&["192.0.2.3", "192.0.2.5", "198.51.100.0/24", "2001:db8::7", "2001:db8:1::/48"]);
    let file = std::path::PathBuf::from("/nonexistent");
    let (o, f) = (old.clone(), file.clone());
    in_netns(&ns, move || nft_target().replace(&o, &f, &[], None)).unwrap();
    assert_eq!(ns.set("badguys4_hosts"), ["192.0.2.1", "192.0.2.3"]);

    // The difference: one IPv4 host and one IPv6 host out, one of each in.
    ns.nft(&["add", "element", "inet", "badguys", "badguys4_hosts", "{ 203.0.113.9 }"]);
    let (o, n, f) = (old.clone(), new.clone(), file.clone());
    in_netns(&ns, move || nft_target().replace(&n, &f, &[], Some(&o))).unwrap();
    assert_eq!(ns.set("badguys4_hosts"), ["192.0.2.3", "192.0.2.5", "203.0.113.9"], "only the difference was sent");
    assert_eq!(ns.set("badguys4"), ["198.51.100.0/24"]);
    assert_eq!(ns.set("badguys6_hosts"), ["2001:db8::7"]);
    assert_eq!(ns.set("badguys6"), ["2001:db8:1::/48"]);

    // Behind our back: 192.0.2.5 removed by hand. Going back to `old`
    // deletes it: nft refuses the transaction, the full replace follows.
    ns.nft(&["delete", "element", "inet", "badguys", "badguys4_hosts", "{ 192.0.2.5 }"]);
    let (o, n, f) = (old.clone(), new.clone(), file.clone());
    in_netns(&ns, move || nft_target().replace(&o, &f, &[], Some(&n))).unwrap();
    assert_eq!(ns.set("badguys4_hosts"), ["192.0.2.1", "192.0.2.3"], "flushed and refilled");
    assert_eq!(ns.set("badguys4"), ["198.51.100.0/24"]);
    assert_eq!(ns.set("badguys6_hosts"), ["2001:db8::1"]);
    assert_eq!(ns.set("badguys6"), ["2001:db8:1::/48"]);
}
