//! `stats` and `report` end to end: figures from a log with known counts,
//! `--prometheus` through promtool, crafted user names that must not
//! become markup, and the report rendered in real headless Chromium (not
//! blank, the map present, no network request).

use std::path::{Path, PathBuf};
use std::process::Command;

use badguys::parse::{Rule, What};
use badguys::store::batch::{Change, DayBatch, HistEvent, DAY};
use badguys::store::history::History;

use crate::harness::{have, require, run, sshd, which, Env};

/// A log with known counts: 81.2.69.142 three invalid users, 1.1.1.7 one,
/// 2a00:1450::5 two failed passwords, 45.0.3.3 one with crafted names.
fn log(e: &Env) {
    let mut t = String::new();
    for (i, u) in ["admin", "oracle", "admin"].iter().enumerate() {
        t += &sshd(10 + i as u32, &format!("Invalid user {u} from 81.2.69.142 port 4{i}"));
    }
    t += &sshd(20, "Invalid user test from 1.1.1.7 port 1");
    t += &sshd(21, "Failed password for root from 2a00:1450::5 port 2 ssh2");
    t += &sshd(22, "Failed password for root from 2a00:1450::5 port 3 ssh2");
    t += &sshd(23, "Invalid user <script>alert(1)</script> from 45.0.3.3 port 5");
    t += &sshd(24, "Invalid user \"><svg/onload=alert(2)> from 45.0.3.3 port 6");
    e.write("auth.log", t.into_bytes());
    // Invalid UTF-8 in a user name.
    let mut raw = sshd(25, "Invalid user X from 45.0.3.3 port 7").into_bytes();
    let x = raw.iter().position(|&b| b == b'X').unwrap();
    raw.splice(x..x + 1, [b'a', 0xff, b'b']);
    e.append_bytes("auth.log", &raw);
}

trait AppendBytes {
    fn append_bytes(&self, name: &str, b: &[u8]);
}

impl AppendBytes for Env {
    fn append_bytes(&self, name: &str, b: &[u8]) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(self.path(name)).unwrap();
        f.write_all(b).unwrap();
    }
}

fn synced(rules: &str) -> Env {
    let e = Env::new();
    log(&e);
    e.sync(&["--rules", rules]).ok();
    e
}

fn view(e: &Env, args: &[&str]) -> crate::harness::Run {
    let mut all = args.to_vec();
    let hist = e.path("history.sqlite");
    if !all.contains(&"--history") {
        all.extend(["--history", hist.to_str().unwrap()]);
    }
    // Without --geo the views search the machine's own directories; the
    // tests that check geography name the databases they wrote.
    e.command(&all)
}

#[test]
fn stats_json_counts_a_known_log() {
    let e = synced("invalid-user,failed-password");
    let dbs = crate::geo::write_dbip(e.dir.path(), crate::geo::BUILT);
    let r = view(&e, &["stats", "--json", "--geo", dbs[0].to_str().unwrap(), "--geo", dbs[1].to_str().unwrap()]);
    r.ok();
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["totals"]["seen"], 4, "{v}");
    assert_eq!(v["totals"]["listed"], 4);
    assert_eq!(v["totals"]["events"], 9);
    assert_eq!(v["rules"]["invalid-user"], 7);
    assert_eq!(v["rules"]["failed-password"], 2);
    let countries: Vec<(&str, u64)> = v["countries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["key"].as_str().unwrap(), c["addrs"].as_u64().unwrap()))
        .collect();
    let mut countries = countries;
    countries.sort();
    assert_eq!(countries, [("AU", 1), ("BR", 1), ("DE", 1), ("GB", 1)]);
    assert!(v["geo"][0]["licence"].as_str().unwrap().contains("DB-IP"));
    // Without history the user names come from the state's records.
    let users: Vec<&str> = v["users"].as_array().unwrap().iter().map(|u| u["user"].as_str().unwrap()).collect();
    assert!(users.contains(&"admin") && users.contains(&"a\\xffb"), "{users:?}");
    // The text view says where the figures come from.
    let t = view(&e, &["stats"]);
    t.ok();
    assert!(t.stdout.contains("4 seen, 4 listed"), "{}", t.stdout);
}

#[test]
fn stats_prometheus_passes_promtool() {
    if !require("promtool (Debian package prometheus)", have("promtool")) {
        return;
    }
    let e = synced("invalid-user,failed-password");
    let r = view(&e, &["stats", "--prometheus"]);
    r.ok();
    assert!(r.stdout.contains("badguys_listed_addresses 4"), "{}", r.stdout);
    assert!(r.stdout.contains("badguys_events_total{rule=\"invalid-user\"} 7"), "{}", r.stdout);
    let f = e.write("badguys.prom", &r.stdout);
    let out = Command::new(which("promtool").unwrap())
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&f).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn crafted_user_names_cannot_inject_markup() {
    let e = synced("invalid-user");
    let out = e.path("r.html");
    view(&e, &["report", "-o", out.to_str().unwrap()]).ok();
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(!html.to_ascii_lowercase().contains("<script"), "a script tag got through");
    // (`"><svg` itself is in our own markup: a pane's div opening a chart.)
    assert!(!html.contains("<svg/onload") && !html.contains("\"><svg/"), "an svg tag got through");
    // Every tag that opens an svg is one of ours.
    for (i, _) in html.match_indices("<svg") {
        let rest = &html[i + 4..i + 12];
        assert!(rest.starts_with(" id=") || rest.starts_with(" class="), "foreign <svg{rest}");
    }
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the name is shown, escaped");
    assert!(html.contains("a\\xffb"), "invalid UTF-8 as \\xNN");
    assert!(html.contains(badguys::report::CSP));
    assert!(!html.contains("http://") && !html.contains("https://"), "no external URL");
}

/// A year of history, for the timelines.
fn history(path: &Path, today: i64) {
    let mut h = History::open(path).unwrap();
    let ips = ["81.2.69.142", "1.1.1.7", "2a00:1450::5", "45.0.3.3"];
    for d in 0..365i64 {
        let day = today - 364 + d;
        let mut b = DayBatch::new();
        for (i, ip) in ips.iter().enumerate() {
            let n = 1 + ((d * 7 + i as i64 * 13) % 23) as u32;
            let e = HistEvent {
                what: What::Attack(if i % 2 == 0 { Rule::InvalidUser } else { Rule::FailedPassword }),
                addr: ip.parse().unwrap(),
                user: Some(if i == 3 { &b"<script>x</script>"[..] } else { &b"root"[..] }),
                time: day * DAY + (d * 3607 + i as i64 * 7200) % DAY,
                host: if i < 2 { b"gw" } else { b"web1" },
                count: n,
                ever_listed: false,
            };
            b.add_event(&e);
            if d % 30 == i as i64 {
                b.add_change(ip.parse().unwrap(), Change::FirstSeen, day * DAY);
                b.add_change(ip.parse().unwrap(), Change::Listed, day * DAY);
            }
        }
        h.apply(&b, d as u64 + 1).unwrap();
    }
}

fn chromium() -> Option<PathBuf> {
    which("chromium").or_else(|| which("chromium-browser"))
}

/// Chromium with everything that could reach out switched off, and every
/// host name resolving nowhere.
fn browser(profile: &Path) -> Command {
    let mut c = Command::new(chromium().unwrap());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--host-resolver-rules=MAP * ~NOTFOUND",
    ]);
    c.arg(format!("--user-data-dir={}", profile.display()));
    c
}

#[test]
fn report_in_headless_chromium() {
    if !require("chromium (Debian package chromium)", chromium().is_some()) {
        return;
    }
    let e = synced("invalid-user,failed-password");
    let dbs = crate::geo::write_maxmind(e.dir.path(), crate::geo::BUILT);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    history(&e.path("history.sqlite"), now.div_euclid(DAY));
    let out = e.path("report.html");
    let r = view(
        &e,
        &["report", "-o", out.to_str().unwrap(), "--geo", dbs[0].to_str().unwrap(), "--geo", dbs[1].to_str().unwrap()],
    );
    r.ok();
    let size = std::fs::metadata(&out).unwrap().len();
    assert!(size < 400_000, "{size} bytes");
    let url = format!("file://{}", out.display());

    // The DOM as Chromium built it: the map is there, with its countries.
    let profile = tempfile::tempdir().unwrap();
    let dom = run({
        let mut c = browser(profile.path());
        c.args(["--dump-dom", &url]);
        c
    });
    assert!(dom.stdout.contains("id=\"worldmap\""), "no map in the DOM: {}", dom.stderr);
    assert!(dom.stdout.contains("<title>GB: 1 addresses"), "GB is shaded");
    assert!(!dom.stdout.contains("<script"), "a script element in the DOM");

    // The screenshot, with a net log of every request made.
    let png = e.path("report.png");
    let shot = shoot(&e, &url, &png);
    assert!(png.exists(), "no screenshot");
    let colours = distinct_colours(&png);
    assert!(colours > 20, "the screenshot looks blank: {colours} colours");
    assert_eq!(page_requests(&shot), Vec::<String>::new(), "the report made requests");
    // The check itself works: a page without the CSP that loads an image is caught.
    let bad = e.write("bad.html", "<html><body><img src=\"http://example.invalid/x.png\">x</body></html>");
    let bad_log = shoot(&e, &format!("file://{}", bad.display()), &e.path("bad.png"));
    assert_eq!(
        page_requests(&bad_log),
        ["http://example.invalid/x.png"],
        "the net log check must see a page's request"
    );
    // The terminal view of the same data, with history: timelines and tables.
    let geo = ["--geo", dbs[0].to_str().unwrap(), "--geo", dbs[1].to_str().unwrap()];
    let stats = view(&e, &[&["stats", "--by", "month"][..], &geo[..]].concat());
    stats.ok();
    for want in ["top countries", "GB ", "per reporting host", "web1", "history: ", "newest bans", "MaxMind"] {
        assert!(stats.stdout.contains(want), "no {want:?} in:\n{}", stats.stdout);
    }
    let bars = stats.stdout.lines().filter(|l| l.starts_with("20") && l.contains('#')).count();
    assert!(bars >= 12, "a year by month has 12 bars or more:\n{}", stats.stdout);
    if let Ok(dest) = std::env::var("BADGUYS_SCREENSHOT") {
        std::fs::copy(&png, Path::new(&dest)).unwrap();
        std::fs::write(Path::new(&dest).with_extension("stats.txt"), &stats.stdout).unwrap();
    }
}

/// Renders `url` to `png` with a net log; returns the log's path.
fn shoot(e: &Env, url: &str, png: &Path) -> PathBuf {
    let profile = tempfile::tempdir().unwrap();
    let netlog = png.with_extension("netlog.json");
    let r = run({
        let mut c = browser(profile.path());
        c.arg(format!("--screenshot={}", png.display()));
        c.arg(format!("--log-net-log={}", netlog.display()));
        c.args(["--window-size=1280,2000", url]);
        c.current_dir(e.dir.path());
        c
    });
    assert!(netlog.exists(), "no net log: {}", r.stderr);
    netlog
}

/// The URLs of the requests the page (not the browser itself) started:
/// URL_REQUEST_START_JOB events whose network isolation key is the file://
/// page's, other than file:// loads. Chromium's own background requests
/// (update checks, time) have the key `null null`.
fn page_requests(netlog: &Path) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(netlog).unwrap()).unwrap();
    let start = v["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].as_u64().unwrap();
    let mut urls = Vec::new();
    for ev in v["events"].as_array().unwrap() {
        let p = &ev["params"];
        let url = p["url"].as_str().unwrap_or_default();
        let key = p["network_isolation_key"].as_str().unwrap_or_default();
        let page = ev["type"].as_u64() == Some(start) && key.contains("file://") && !url.starts_with("file://");
        if page && !urls.iter().any(|u| u == url) {
            urls.push(url.to_string());
        }
    }
    urls
}

/// Distinct RGB colours in a PNG.
fn distinct_colours(path: &Path) -> usize {
    let dec = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = info.color_type.samples();
    let mut seen = std::collections::HashSet::new();
    for px in buf[..info.buffer_size()].chunks(step) {
        if px.len() >= 3 {
            seen.insert((px[0], px[1], px[2]));
        }
    }
    seen.len()
}
