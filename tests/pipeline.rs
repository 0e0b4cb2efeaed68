//! Reading on two cores (the reader thread scans, this one counts) against
//! the one-thread read: the same list, state, history and counters, with
//! the event stream cut into batches of every size from one event up, on a
//! generated log whose kex pairs, repeats, resends and year rollover span
//! every cut and a rotation.

use crate::harness::*;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const MONTHS: [&str; 2] = ["Dec", "Jan"];

/// A log of `n` lines from two hosts, starting on Dec 31 23:00 and running
/// into January, with every kind of line every rule reads.
fn generate(seed: u64, n: usize) -> String {
    let mut r = Rng(seed | 1);
    let mut out = String::new();
    let mut secs = 23 * 3600u64;
    let mut sent: Vec<String> = Vec::new();
    // Kex errors waiting for their reset: (host, pid).
    let mut kex: Vec<(usize, u64)> = Vec::new();
    for _ in 0..n {
        secs += r.below(3);
        let (day, month) = if secs < 86400 { (31, MONTHS[0]) } else { (1, MONTHS[1]) };
        let s = secs % 86400;
        let stamp = format!("{month} {day:>2} {:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
        let host = r.below(2) as usize;
        let pid = 1000 + r.below(40);
        let ip = match r.below(4) {
            0 => format!("192.0.2.{}", r.below(30) + 1),
            1 => format!("198.51.100.{}", r.below(30) + 1),
            2 => format!("203.0.113.{}", r.below(30) + 1),
            _ => format!("2001:db8::{:x}", r.below(30) + 1),
        };
        let port = 1024 + r.below(60000);
        let user = ["root", "admin", "oracle", "test", "a b", "ubuntu"][r.below(6) as usize];
        let sshd = |msg: &str| format!("{stamp} h{host} sshd[{pid}]: {msg}\n");
        let line = match r.below(20) {
            0..=5 => format!("{stamp} h{host} CRON[{pid}]: pam_unix(cron:session): session opened for user root\n"),
            6 | 7 => sshd(&format!("Invalid user {user} from {ip} port {port}")),
            8 => sshd(&format!("Failed password for invalid user {user} from {ip} port {port} ssh2")),
            9 => sshd(&format!("Disconnected from authenticating user root {ip} port {port} [preauth]")),
            10 | 11 => {
                kex.push((host, pid));
                sshd("error: kex_exchange_identification: read: Connection reset by peer")
            }
            12 | 13 if !kex.is_empty() => {
                let (h, p) = kex.remove(r.below(kex.len() as u64) as usize);
                format!("{stamp} h{h} sshd[{p}]: Connection reset by {ip} port {port}\n")
            }
            12 => sshd(&format!("Connection reset by {ip} port {port} [preauth]")),
            13 => format!("{stamp} h{host} last message repeated {} times\n", 1 + r.below(5)),
            14 => sshd(&format!(
                "message repeated {} times: [ Failed password for {user} from {ip} port {port} ssh2]",
                2 + r.below(4)
            )),
            // Logins mostly from one address, so that most attackers are listed.
            15 if r.below(8) > 0 => sshd(&format!("Accepted publickey for {user} from 192.0.2.250 port {port} ssh2")),
            15 => sshd(&format!("Accepted password for {user} from {ip} port {port} ssh2")),
            16 if !sent.is_empty() => sent[sent.len() - 1 - r.below(sent.len().min(50) as u64) as usize].clone(),
            16 => sshd("Connection closed by 192.0.2.200 port 22"),
            17 => sshd(&format!("Received disconnect from {ip} port {port}:11: Bye Bye [preauth]")),
            18 => sshd(&format!("Unable to negotiate with {ip} port {port}: no matching key exchange method found.")),
            _ => sshd(&format!("Failed password for {user} from {ip} port {port} ssh2")),
        };
        sent.push(line.clone());
        out.push_str(&line);
    }
    out
}

/// List, state, history stats and the sync's summary of one first sync.
fn first_sync(e: &Env, env: &[(&str, &str)]) -> (String, String, String, String) {
    for f in ["badguys", "state", "history.sqlite", "history.sqlite-wal", "history.sqlite-shm"] {
        let _ = std::fs::remove_file(e.path(f));
    }
    let mut c = e.cmd(e.sync_args(&["--rules", "all", "--threshold", "2"]));
    c.env("BADGUYS_NOW", "2027-01-01T12:00:00Z");
    for (k, v) in env {
        c.env(k, v);
    }
    let sync = run(c);
    sync.ok();
    // The summary's counts; nothing else in it varies from run to run.
    let summary: Vec<&str> = sync.stderr.lines().filter(|l| !l.contains(" ms") && !l.contains(" s)")).collect();
    let state = e.path("state");
    let mut stats = e.cmd(["stats", "--json", "--state", state.to_str().unwrap()]);
    stats.env("BADGUYS_NOW", "2027-01-01T12:00:00Z");
    let history = run(stats);
    // The state but for the list file's stamp (it was written anew), the
    // checksum that covers it and the duplicate check's key and hashes.
    let state: Vec<String> = e
        .read("state")
        .lines()
        // The duplicate check's key is drawn anew by each state, and its
        // hashes with it.
        .filter(|l| !l.starts_with("end\t") && !l.starts_with("end ") && !l.starts_with("dedup"))
        .map(|l| l.split([' ', '\t']).filter(|w| !w.starts_with("out=")).collect::<Vec<_>>().join(" "))
        .collect();
    assert!(state.len() > 40, "a state with records: {state:?}");
    (e.read("badguys"), state.join("\n"), history.ok().stdout.clone(), summary.join("\n"))
}

#[test]
fn two_threads_read_exactly_as_one_on_every_batch_size() {
    let e = Env::new();
    // A rotation in the middle: kex errors and repeats at the end of the
    // rotated file complete in the live log.
    let log = generate(13, 6000);
    let cut = log[..log.len() / 2].rfind('\n').unwrap() + 1;
    e.write("auth.log.1", &log[..cut]);
    e.write("auth.log", &log[cut..]);
    let one = first_sync(&e, &[("BADGUYS_THREADS", "1")]);
    assert!(lines(&one.0).len() > 40, "the log lists addresses: {}", one.0);
    for rule in ["kex-reset=", "root-disconnect=", "invalid-user="] {
        assert!(one.3.contains(rule), "summary names {rule}: {}", one.3);
    }
    assert!(one.3.contains("duplicate lines"), "the log has resends: {}", one.3);
    let mut r = Rng(7);
    let mut sizes: Vec<u64> = vec![1, 2, 3, 4, 5, 8, 64, 1000, 100_000];
    sizes.extend((0..6).map(|_| 1 + r.below(40)));
    for size in sizes {
        let two = first_sync(&e, &[("BADGUYS_PIPELINE_BATCH", &size.to_string())]);
        assert!(two.0 == one.0, "batches of {size}: the lists differ");
        let first = one.1.lines().zip(two.1.lines()).find(|(a, b)| a != b);
        assert!(two.1 == one.1, "batches of {size}: the states differ: {first:?}");
        assert_eq!(two.2, one.2, "batches of {size}: the history differs");
        assert_eq!(two.3, one.3, "batches of {size}: the counters differ");
    }
}
