//! The parser table test: every case of `tests/data/corpus.txt` is fed to a
//! fresh scanner with all rules on, and its events must be exactly the
//! expected ones, in order. The file's format is described at its top.

use badguys::parse::{RuleSet, Scanner, What};

use crate::harness::{lines, repo_file, Env};

// The log generator, for the end-to-end check below.
#[allow(dead_code)]
#[path = "../examples/genlog.rs"]
mod genlog;

struct Case {
    line: usize,
    input: Vec<u8>,
    expected: Vec<String>,
}

fn unescape(s: &str, line: usize) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            let hex = std::str::from_utf8(&b[i + 2..i + 4]).unwrap_or_else(|_| panic!("line {line}: bad \\x escape"));
            out.push(u8::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("line {line}: bad \\x escape")));
            i += 4;
        } else if b[i] == b'\\' && b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn cases(text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut cur: Option<Case> = None;
    for (i, l) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(raw) = l.strip_prefix("< ") {
            let c = cur.get_or_insert_with(|| Case { line: n, input: Vec::new(), expected: Vec::new() });
            assert!(c.expected.is_empty(), "line {n}: input after expectations (missing blank line?)");
            c.input.extend_from_slice(raw.as_bytes());
            c.input.push(b'\n');
        } else if let Some(raw) = l.strip_prefix("<b ") {
            let c = cur.get_or_insert_with(|| Case { line: n, input: Vec::new(), expected: Vec::new() });
            assert!(c.expected.is_empty(), "line {n}: input after expectations (missing blank line?)");
            c.input.extend(unescape(raw, n));
            c.input.push(b'\n');
        } else if let Some(exp) = l.strip_prefix("> ") {
            let c = cur.as_mut().unwrap_or_else(|| panic!("line {n}: expectation without input"));
            if exp != "none" {
                c.expected.push(exp.to_string());
            }
        } else if l.trim().is_empty() || l.starts_with('#') {
            if l.trim().is_empty() {
                if let Some(c) = cur.take() {
                    cases.push(c);
                }
            }
        } else {
            panic!("line {n}: not `< `, `<b `, `> `, `#` or blank: {l:?}");
        }
    }
    cases.extend(cur);
    cases
}

/// The events of one input, in the corpus's notation.
pub fn events(input: &[u8]) -> Vec<String> {
    let mut sc = Scanner::new(RuleSet::all());
    let mut got = Vec::new();
    sc.scan(input, &mut |ev| {
        let mut s = format!("{} {}", ev.what.name(), ev.ip);
        if ev.count != 1 {
            s.push_str(&format!(" x{}", ev.count));
        }
        if let Some(u) = ev.user {
            s.push_str(&format!(" user={}", u.escape_ascii()));
        }
        got.push(s);
    });
    got
}

#[test]
fn corpus() {
    let text = std::fs::read_to_string(repo_file("tests/data/corpus.txt")).unwrap();
    let cases = cases(&text);
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        assert!(!c.input.is_empty(), "line {}: case without input", c.line);
        let got = events(&c.input);
        if got != c.expected {
            failures.push(format!(
                "case at line {}:\n  input:    {}\n  expected: {:?}\n  got:      {:?}",
                c.line,
                String::from_utf8_lossy(&c.input).trim_end().replace('\n', "\n            "),
                c.expected,
                got
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} corpus cases fail:\n{}", failures.len(), cases.len(), failures.join("\n"));
    eprintln!("corpus: {} cases", cases.len());
}

/// Scanning a case in pieces (every split point at a line boundary) gives
/// the same events as scanning it whole: state carries across buffers.
#[test]
fn corpus_split_across_buffers() {
    let text = std::fs::read_to_string(repo_file("tests/data/corpus.txt")).unwrap();
    for c in cases(&text) {
        let whole = events(&c.input);
        let nls: Vec<usize> = c.input.iter().enumerate().filter(|(_, &b)| b == b'\n').map(|(i, _)| i + 1).collect();
        for &cut in &nls[..nls.len().saturating_sub(1)] {
            let mut sc = Scanner::new(RuleSet::all());
            let mut got = Vec::new();
            for part in [&c.input[..cut], &c.input[cut..]] {
                sc.scan(part, &mut |ev| got.push(format!("{} {} {}", ev.what.name(), ev.ip, ev.count)));
            }
            let whole_short: Vec<String> = whole
                .iter()
                .map(|s| {
                    let mut it = s.split(' ');
                    let (w, ip) = (it.next().unwrap(), it.next().unwrap());
                    let n = it.next().and_then(|x| x.strip_prefix('x')).unwrap_or("1");
                    format!("{w} {ip} {n}")
                })
                .collect();
            assert_eq!(got, whole_short, "case at line {} split at byte {cut}", c.line);
        }
    }
}

/// On genlog's output with the opt-in families' attacks and every rule on,
/// no address that logged in is listed, though the users' own lines hit
/// rules (refused keys, a mistyped password, probes closed before auth).
#[test]
fn genlog_logins_are_never_listed() {
    let e = Env::new();
    let log = e.log();
    let args = ["--size", "2M", "--seed", "7", "--attackers", "300", "--families", "--out", log.to_str().unwrap()];
    let legit = genlog::generate(&args);
    let text = std::fs::read(&log).unwrap();
    let mut logins = std::collections::BTreeSet::new();
    let mut hits_of_users = 0;
    let mut sc = Scanner::new(RuleSet::all());
    sc.scan(&text, &mut |ev| match ev.what {
        What::Login => {
            logins.insert(ev.ip.to_string());
        }
        What::Attack(_) if legit.contains(&ev.ip.to_string()) => hits_of_users += 1,
        What::Attack(_) => {}
    });
    assert!(!logins.is_empty() && hits_of_users > 0, "the users must log in and hit rules");
    e.sync(&["--rules", "all"]).ok();
    let out = e.read("badguys");
    let listed = lines(&out);
    assert!(listed.len() > 100, "only {} listed", listed.len());
    for ip in &listed {
        assert!(!logins.contains(*ip), "{ip} logged in but is listed");
    }
}

/// The README's rules table says what the rule metadata says.
#[test]
fn readme_rules_table_matches_the_metadata() {
    let readme = std::fs::read_to_string(repo_file("README.md")).unwrap();
    for r in badguys::parse::Rule::ALL {
        let i = r.info();
        let row = format!(
            "| `{}` | {} | {} | `{}` | {} | {} |",
            r.name(),
            if r.default_on() { "on" } else { "opt-in" },
            i.summary,
            i.example,
            i.risk,
            i.threshold
        );
        assert!(readme.contains(&row), "README lacks the row\n{row}");
    }
}

/// Recall on genlog's output: with every rule on, every attack event the
/// generator wrote (its `--truth`) is counted for its address, no more and
/// no fewer, in the syslog styles (classic stamps, and RFC 3339 mixed in);
/// and no address that logged in is listed. (`--style bare` has no pid to
/// pair a kex error with its reset across interleaved connections: only
/// adjacent pairs count there, so it is not in this check.)
#[test]
fn genlog_attack_events_are_all_counted() {
    for style in ["classic", "mixed"] {
        let e = Env::new();
        let (log, truth) = (e.log(), e.path("truth"));
        let args = ["--size", "1M", "--seed", "11", "--attackers", "200", "--families", "--style", style];
        let legit = genlog::generate(
            &[&args[..], &["--out", log.to_str().unwrap(), "--truth", truth.to_str().unwrap()]].concat(),
        );
        e.sync(&["--rules", "all"]).ok();
        let state = e.read("state");
        let mut got = std::collections::HashMap::new();
        for f in state.lines().map(|l| l.split('\t').collect::<Vec<_>>()).filter(|f| f[0] == "addr") {
            let hits = f.iter().find_map(|kv| kv.strip_prefix("hits=")).unwrap_or("");
            let n: u64 = hits
                .split(',')
                .filter(|h| !h.is_empty())
                .map(|h| h.split(':').nth(1).unwrap().parse::<u64>().unwrap())
                .sum();
            got.insert(f[1].to_string(), n);
        }
        let truth = e.read("truth");
        let mut total = 0;
        for (addr, n) in truth.lines().map(|l| l.split_once(' ').unwrap()) {
            let n: u64 = n.parse().unwrap();
            assert_eq!(got.get(addr).copied().unwrap_or(0), n, "{style}: {addr}'s attack events");
            total += n;
        }
        assert!(truth.lines().count() > 100 && total > 1000, "{style}: {total} events");
        let out = e.read("badguys");
        for ip in lines(&out) {
            assert!(!legit.iter().any(|l| l == ip), "{style}: {ip} logged in but is listed");
        }
    }
}
