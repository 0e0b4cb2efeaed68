//! A live attack, end to end: two network namespaces joined by a veth pair
//! (192.0.2.0/24 and 2001:db8::/64 only), the real OpenSSH sshd in one,
//! logging with -E, the shipped nftables ruleset and `badguys watch` beside
//! it; attackers in the other. An attacker's next TCP connection must time
//! out (dropped) over IPv4 and IPv6; a client that resets during the banner
//! exchange is banned by kex-reset; an allowed admin and a key login keep
//! working; a restart and a log rotation lose nobody.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::firewall_nft::{nft_available, Netns};
use crate::harness::*;

const SERVER4: &str = "192.0.2.1";
const SERVER6: &str = "2001:db8::1";
const PORT: &str = "2222";
const ADMIN: &str = "192.0.2.2";
const KEYUSER: &str = "192.0.2.3";
const ATTACKER4: &str = "192.0.2.10";
const ATTACKER6: &str = "2001:db8::10";
const KEX: &str = "192.0.2.11";
const LATE: &str = "192.0.2.12";

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().unwrap();
    assert!(st.success(), "ip {args:?}");
}

/// The two hosts: `srv` (the server) and `atk` (the attackers), joined by
/// a veth pair that is deleted with the namespaces.
struct Net {
    srv: Netns,
    atk: Netns,
}

impl Net {
    fn new() -> Net {
        let (srv, atk) = (Netns::new("srv"), Netns::new("atk"));
        let (a, b) = (format!("bgs{}", std::process::id() % 100000), format!("bga{}", std::process::id() % 100000));
        ip(&["link", "add", &a, "netns", &srv.name, "type", "veth", "peer", "name", &b, "netns", &atk.name]);
        for (ns, dev, v4, v6) in [
            (&srv, &a, vec![SERVER4], vec![SERVER6]),
            (&atk, &b, vec![ADMIN, KEYUSER, ATTACKER4, KEX, LATE], vec![ATTACKER6]),
        ] {
            ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
            for addr in v4 {
                ip(&["-n", &ns.name, "addr", "add", &format!("{addr}/24"), "dev", dev]);
            }
            for addr in v6 {
                ip(&["-n", &ns.name, "addr", "add", &format!("{addr}/64"), "dev", dev, "nodad"]);
            }
            ip(&["-n", &ns.name, "link", "set", dev, "up"]);
        }
        Net { srv, atk }
    }
}

/// `ssh` from the attacker namespace, from `src`, as `user`; returns
/// (exit code, stderr).
fn ssh(net: &Net, e: &Env, src: &str, dst: &str, user: &str, key: bool) -> (i32, String) {
    let key_path = e.path("client_key");
    let mut args = vec![
        "-F",
        "/dev/null",
        "-p",
        PORT,
        "-b",
        src,
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "ConnectTimeout=3",
        "-o",
        "LogLevel=ERROR",
    ];
    if key {
        args.extend(["-i", key_path.to_str().unwrap(), "-o", "IdentitiesOnly=yes"]);
    } else {
        args.extend(["-o", "PubkeyAuthentication=no"]);
    }
    let target = format!("{user}@{dst}");
    args.extend([target.as_str(), "true"]);
    let out = net.atk.cmd("ssh", args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Whether a TCP connection from `src` to the server is dropped (times
/// out) rather than answered.
fn dropped(net: &Net, e: &Env, src: &str, dst: &str) -> bool {
    let (code, err) = ssh(net, e, src, dst, "probe", false);
    code == 255 && err.contains("timed out")
}

/// From the attacker namespace, from `src`: connect, read the banner, send
/// half of ours, then reset the connection (SO_LINGER 0), as scanners do.
fn kex_reset_client(atk: &Netns, src: &str, dst: &str) {
    use nix::sys::socket::{
        bind, connect, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage,
    };
    let ns = std::fs::File::open(format!("/run/netns/{}", atk.name)).unwrap();
    let (src, dst): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    // A thread of its own: setns changes the calling thread's namespace.
    std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let fam = if src.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
        let fd = socket(fam, SockType::Stream, SockFlag::empty(), None).unwrap();
        bind(fd.as_raw_fd(), &SockaddrStorage::from(SocketAddr::new(src, 0))).unwrap();
        connect(fd.as_raw_fd(), &SockaddrStorage::from(SocketAddr::new(dst, PORT.parse().unwrap()))).unwrap();
        let mut banner = [0u8; 256];
        let _ = nix::unistd::read(fd.as_raw_fd(), &mut banner);
        let _ = nix::unistd::write(&fd, b"SSH-2.0-Go");
        std::thread::sleep(Duration::from_millis(100));
        setsockopt(&fd, sockopt::Linger, &nix::libc::linger { l_onoff: 1, l_linger: 0 }).unwrap();
        drop(fd);
    })
    .join()
    .unwrap();
}

fn in_set(net: &Net, addr: &str) -> bool {
    let set = if addr.contains(':') { "badguys6_hosts" } else { "badguys4_hosts" };
    run(net.srv.cmd("nft", ["get", "element", "inet", "badguys", set, &format!("{{ {addr} }}")])).code == 0
}

fn start_watch(net: &Net, e: &Env, log: &Path) -> Daemon {
    let allow = e.path("allow");
    let args = e.watch_args(&[
        "--firewall",
        "nftables",
        "--log",
        log.to_str().unwrap(),
        "--allow-file",
        allow.to_str().unwrap(),
    ]);
    let d =
        Daemon::spawn(net.srv.cmd(BIN, args), e.path(&format!("watch-{}.err", Instant::now().elapsed().as_nanos())));
    wait_for(10, "watch's first sync", || e.path("badguys").exists());
    d
}

#[test]
fn a_live_attack_is_blocked_end_to_end() {
    if !nft_available()
        || !require("sshd (Debian package openssh-server)", Path::new("/usr/sbin/sshd").exists())
        || !require("ssh and ssh-keygen (Debian package openssh-client)", have("ssh") && have("ssh-keygen"))
    {
        return;
    }
    let e = Env::new();
    let net = Net::new();
    net.srv.nft(&["-f", repo_file("contrib/nftables/badguys.nft").to_str().unwrap()]);

    // A throwaway host key, a client key, and sshd logging with -E.
    for (name, path) in [("host", e.path("host_key")), ("client", e.path("client_key"))] {
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path.to_str().unwrap()])
            .status();
        assert!(st.unwrap().success());
    }
    std::fs::copy(e.path("client_key.pub"), e.path("authorized_keys")).unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    let config = format!(
        "Port {PORT}\nListenAddress {SERVER4}\nListenAddress {SERVER6}\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
         StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
         PermitRootLogin prohibit-password\nMaxStartups 100\nLogLevel INFO\n",
        e.path("host_key").display(),
        e.path("sshd.pid").display(),
        e.path("authorized_keys").display()
    );
    e.write("sshd_config", config);
    let log = e.path("sshd.log");
    e.write("sshd.log", "");
    let sshd = Daemon::spawn(
        net.srv
            .cmd("/usr/sbin/sshd", ["-D", "-f", e.path("sshd_config").to_str().unwrap(), "-E", log.to_str().unwrap()]),
        e.path("sshd.err"),
    );
    wait_for(10, "sshd to listen", || e.read("sshd.log").contains("Server listening"));
    e.write("allow", format!("{ADMIN}   # the admin\n"));
    let mut watch = start_watch(&net, &e, &log);

    // The key user logs in; the admin, in the allow file, fumbles a user name.
    assert_eq!(ssh(&net, &e, KEYUSER, SERVER4, "root", true).0, 0, "key login failed:\n{}", e.read("sshd.log"));
    ssh(&net, &e, ADMIN, SERVER4, "adminn", false);

    // An unknown user over IPv4 and IPv6: dropped within a few seconds.
    let t = Instant::now();
    ssh(&net, &e, ATTACKER4, SERVER4, "nosuchuser1", false);
    ssh(&net, &e, ATTACKER6, SERVER6, "nosuchuser2", false);
    wait_for(5, "both attackers in the sets", || in_set(&net, ATTACKER4) && in_set(&net, ATTACKER6));
    eprintln!("FIGURE live attack: attackers in the sets {:?} after their first attempts began", t.elapsed());
    assert!(dropped(&net, &e, ATTACKER4, SERVER4), "IPv4 attacker not dropped");
    assert!(dropped(&net, &e, ATTACKER6, SERVER6), "IPv6 attacker not dropped");

    // A scanner that resets during the banner exchange: kex-reset.
    kex_reset_client(&net.atk, KEX, SERVER4);
    wait_for(5, "the kex-reset client in the set", || in_set(&net, KEX));
    let sshd_log = e.read("sshd.log");
    assert!(sshd_log.contains(&format!("Connection reset by {KEX} port")), "{sshd_log}");

    // The admin and the key user still get in.
    assert!(!in_set(&net, ADMIN) && !in_set(&net, KEYUSER));
    assert_eq!(ssh(&net, &e, KEYUSER, SERVER4, "root", true).0, 0);
    assert!(!dropped(&net, &e, ADMIN, SERVER4));

    // Rotation during the attack: rename, new file; sshd's next connection
    // logs to the new one (each connection re-executes sshd with -E PATH).
    std::fs::rename(&log, e.path("sshd.log.1")).unwrap();
    e.write("sshd.log", "");
    ssh(&net, &e, LATE, SERVER4, "nosuchuser42", false);
    wait_for(5, "the attacker after the rotation", || in_set(&net, LATE));

    // Restarted: everyone still blocked, nobody counted twice.
    assert_eq!(watch.stop(), 0, "{}", watch.log());
    let mut watch = start_watch(&net, &e, &log);
    std::thread::sleep(Duration::from_millis(500));
    for a in [ATTACKER4, ATTACKER6, KEX, LATE] {
        assert!(in_set(&net, a), "{a} left the set after a restart");
    }
    assert!(dropped(&net, &e, ATTACKER4, SERVER4));
    assert_eq!(ssh(&net, &e, KEYUSER, SERVER4, "root", true).0, 0);
    assert_eq!(watch.stop(), 0, "{}", watch.log());
    let state = e.read("state");
    assert!(state.contains(&format!("addr\t{ATTACKER4}\t")) && state.contains("hits=invalid-user:1\t"), "{state}");
    drop(sshd);
}
