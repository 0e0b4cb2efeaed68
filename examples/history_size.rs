//! history_size: how big a year of history gets at the rate of
//! `examples/genlog.rs`'s 1 GB log per day (50,000 attackers).
//!
//! ```text
//! cargo run --release --example history_size -- [DAYS] [ATTACKERS] [OUT]
//! ```
//!
//! Each day 50,000 addresses attack, each under two rules (from the same
//! reporting host), a tenth of them new that day and listed; 3,000
//! distinct user names are tried (1,000 kept per day); a few listed
//! addresses log in. One `History::apply` per day. Prints the file size
//! and the time taken (timing is reported, never asserted).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use badguys::parse::{Rule, What};
use badguys::store::batch::{Change, DayBatch, HistEvent, DAY};
use badguys::store::history::History;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let days: i64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(365);
    let attackers: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(50_000);
    let out = args.get(3).cloned().unwrap_or_else(|| "target/history-size.sqlite".into());
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(format!("{out}-wal"));
    let mut h = History::open(std::path::Path::new(&out)).expect("open");
    let started = Instant::now();
    let users: Vec<Vec<u8>> = (0..3000).map(|i| format!("user{i}").into_bytes()).collect();
    let rules = [Rule::InvalidUser, Rule::FailedPassword, Rule::KexReset, Rule::RootDisconnect];
    let first_day = 19_700;
    for d in 0..days {
        let day = first_day + d;
        let mut b = DayBatch::new();
        for i in 0..attackers {
            // A tenth of the day's attackers are new addresses.
            let n = if i % 10 == 0 { 1_000_000 + (d as u32) * attackers + i } else { i };
            let ip = IpAddr::V4(Ipv4Addr::from(0x2d00_0000u32.wrapping_add(n.wrapping_mul(2_654_435_761) >> 4)));
            for k in 0..2 {
                let rule = rules[((i + k) % 4) as usize];
                let user = &users[((i * 7 + k * 13 + d as u32) % 3000) as usize];
                let e = HistEvent {
                    what: What::Attack(rule),
                    addr: ip,
                    user: Some(user),
                    time: day * DAY + i64::from(i % 86_400),
                    host: b"gw1",
                    count: 3,
                    ever_listed: false,
                };
                b.add_event(&e);
            }
            if i % 10 == 0 {
                b.add_change(ip, Change::FirstSeen, day * DAY);
                b.add_change(ip, Change::Listed, day * DAY + 60);
            }
            if i % 5000 == 0 {
                let e = HistEvent {
                    what: What::Login,
                    addr: ip,
                    user: Some(b"deploy"),
                    time: day * DAY + 7200,
                    host: b"gw1",
                    count: 1,
                    ever_listed: true,
                };
                b.add_event(&e);
            }
        }
        h.apply(&b, (d + 1) as u64).expect("apply");
    }
    let secs = started.elapsed().as_secs_f64();
    drop(h);
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    let wal = std::fs::metadata(format!("{out}-wal")).map(|m| m.len()).unwrap_or(0);
    println!(
        "{days} days x {attackers} attackers: {out} {:.1} MB (+{:.1} MB WAL), {:.1} MB/day; {secs:.1} s, {:.2} s/day",
        size as f64 / 1e6,
        wal as f64 / 1e6,
        size as f64 / 1e6 / days as f64,
        secs / days as f64
    );
}
