//! `badguys test`: what each line of a log does. Scans one line at a time
//! with the real [`Scanner`] and asks it for the line's [`Outcome`], prints
//! the rule and address or why nothing matched, then a summary per rule
//! with the thresholds explained. Reads its input only: no state, no list,
//! no lock.

use std::collections::HashMap;
use std::io::{self, BufRead, Write};
use std::net::IpAddr;

use crate::parse::{split, Line, Outcome, Rule, RuleSet, Scanner, What, MAX_LINE};
use crate::rules::Policy;

/// What `test` was asked.
pub struct Options {
    pub rules: RuleSet,
    pub policy: Policy,
    /// Print only the messages of sshd lines no rule took.
    pub only_missed: bool,
}

/// Lines by outcome, for the summary.
#[derive(Default)]
struct Counts {
    lines: u64,
    sshd: u64,
    other: u64,
    no_rule: u64,
    rule_off: [u64; Rule::ALL.len()],
    bad_address: u64,
    kex_waiting: u64,
    overlong: u64,
    duplicates: u64,
}

/// Per address: events by rule, and whether it logged in.
#[derive(Default)]
struct Seen {
    hits: [u64; Rule::ALL.len()],
    login: bool,
}

/// Runs the test over `input`, writing to `o`.
pub fn run(input: &mut dyn BufRead, o: &mut dyn Write, opt: &Options) -> io::Result<()> {
    // Every rule scans, so a line of a rule left out of --rules says so.
    let mut scanner = Scanner::new(RuleSet::all());
    let mut counts = Counts::default();
    let mut seen: HashMap<IpAddr, Seen> = HashMap::new();
    let mut buf = Vec::with_capacity(4096);
    let mut events: Vec<(What, IpAddr, u32)> = Vec::new();
    let mut n = 0u64;
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        n += 1;
        counts.lines += 1;
        let (is_sshd, program, message) = header(&buf);
        if is_sshd {
            counts.sshd += 1;
        }
        if buf.len() > MAX_LINE + 1 {
            scanner.note_overlong();
            counts.overlong += 1;
            if !opt.only_missed {
                writeln!(o, "{n}: too long ({} bytes): not parsed", buf.len())?;
            }
            continue;
        }
        events.clear();
        scanner.scan(&buf, &mut |ev| events.push((ev.what, ev.ip, ev.count)));
        let off = events.iter().find_map(|&(w, ip, _)| match w {
            What::Attack(r) if !opt.rules.contains(r) => Some((r, ip)),
            _ => None,
        });
        let outcome = match scanner.outcome() {
            Outcome::NoNeedle if is_sshd => Outcome::NoRule,
            Outcome::NoNeedle => Outcome::OtherProgram,
            Outcome::Event if off.is_some() => off.map_or(Outcome::NoRule, |(r, ip)| Outcome::RuleOff(r, ip)),
            x => x,
        };
        let missed = matches!(outcome, Outcome::NoRule | Outcome::RuleOff(..) | Outcome::BadAddress);
        if opt.only_missed {
            if missed && is_sshd {
                writeln!(o, "{}", show(message))?;
            }
        } else {
            write!(o, "{n}: ")?;
        }
        match outcome {
            Outcome::Event => {
                for &(what, ip, count) in &events {
                    let s = seen.entry(ip).or_default();
                    let times = if count > 1 { format!(" ({count} times)") } else { String::new() };
                    match what {
                        What::Attack(r) => s.hits[r as usize] += u64::from(count),
                        What::Login => s.login = true,
                    }
                    if opt.only_missed {
                        continue;
                    }
                    match what {
                        What::Attack(r) => writeln!(o, "{} {ip}{times}", r.name())?,
                        What::Login => writeln!(o, "login {ip}: spared{times}")?,
                    }
                }
            }
            Outcome::RuleOff(r, ip) => {
                counts.rule_off[r as usize] += 1;
                if !opt.only_missed {
                    writeln!(o, "no rule: {} would take {ip}, but it is not in --rules: {}", r.name(), show(message))?;
                }
            }
            Outcome::NoRule => {
                counts.no_rule += 1;
                if !opt.only_missed {
                    writeln!(o, "no rule: {}", show(message))?;
                }
            }
            Outcome::BadAddress => {
                counts.bad_address += 1;
                if !opt.only_missed {
                    writeln!(o, "bad address (not counted): {}", show(message))?;
                }
            }
            Outcome::KexWaiting => {
                counts.kex_waiting += 1;
                if !opt.only_missed {
                    writeln!(o, "kex error: waiting for the `Connection reset by` of the same process")?;
                }
            }
            Outcome::Duplicate => {
                counts.duplicates += 1;
                if !opt.only_missed {
                    writeln!(o, "duplicate of a line read lately (a resend): not counted again")?;
                }
            }
            Outcome::OtherProgram | Outcome::Header | Outcome::NoNeedle => {
                counts.other += 1;
                if !opt.only_missed {
                    match program {
                        Some(p) => writeln!(o, "not an sshd line ({})", show(p))?,
                        None => writeln!(o, "not an sshd line")?,
                    }
                }
            }
            Outcome::Overlong => {
                counts.overlong += 1;
                if !opt.only_missed {
                    writeln!(o, "too long: not parsed")?;
                }
            }
        }
    }
    if opt.only_missed {
        return Ok(());
    }
    summary(o, opt, &counts, &seen)
}

fn summary(o: &mut dyn Write, opt: &Options, c: &Counts, seen: &HashMap<IpAddr, Seen>) -> io::Result<()> {
    let p = &opt.policy;
    writeln!(o)?;
    writeln!(o, "{} lines, {} from sshd; rules: {}", c.lines, c.sshd, opt.rules)?;
    // The pool: the rules without their own threshold; each of the others
    // lists an address alone at its own.
    let total = |s: &Seen| -> u64 {
        Rule::ALL.iter().filter(|r| p.own_threshold(**r).is_none()).map(|&r| s.hits[r as usize]).sum()
    };
    let alone =
        |s: &Seen| Rule::ALL.iter().any(|&r| p.own_threshold(r).is_some_and(|n| s.hits[r as usize] >= u64::from(n)));
    let reaches = |s: &Seen| !s.login && (total(s) >= u64::from(p.threshold) || alone(s));
    for r in opt.rules.iter() {
        let i = r.info();
        let addrs = seen.values().filter(|s| s.hits[r as usize] > 0);
        let (mut events, mut n, mut listed) = (0, 0, 0);
        for s in addrs {
            events += s.hits[r as usize];
            n += 1;
            listed += u64::from(reaches(s));
        }
        let alone = match p.own_threshold(r) {
            Some(n) => format!("; counts apart: its own threshold {n}, not pooled with the other rules"),
            None => String::new(),
        };
        writeln!(
            o,
            "  {:<20} {events:>8} events {n:>7} addresses {listed:>7} would be listed  (recommended threshold {}{alone})",
            r.name(),
            i.threshold
        )?;
    }
    let listed = seen.values().filter(|s| reaches(s)).count();
    let spared = seen.values().filter(|s| s.login && total(s) > 0).count();
    let window = match p.window {
        Some(w) => format!("within --window {w}s in the daemon (not applied here: all of the input counts)"),
        None => "at any time (no --window)".into(),
    };
    writeln!(
        o,
        "threshold: an address is listed when its events of the rules without their own threshold together \
         reach --threshold {} {window}, or one rule with its own threshold alone reaches it; \
         {listed} addresses would be listed",
        p.threshold
    )?;
    if spared > 0 {
        let how = if p.ban_accepted { "listed anyway (--ban-accepted)" } else { "spared" };
        writeln!(o, "logins: {spared} attacking addresses also logged in successfully: {how}")?;
    }
    let off: u64 = c.rule_off.iter().sum();
    writeln!(
        o,
        "missed: {} sshd lines no rule knows, {off} for rules not in --rules, {} with a bad address, \
         {} kex errors (first halves), {} too long, {} duplicates; {} lines not from sshd",
        c.no_rule, c.bad_address, c.kex_waiting, c.overlong, c.duplicates, c.other
    )?;
    for r in Rule::ALL.iter().filter(|r| c.rule_off[**r as usize] > 0) {
        writeln!(o, "  {} lines for {} (add it to --rules to count them)", c.rule_off[*r as usize], r.name())?;
    }
    Ok(())
}

/// Whether the line is sshd's, the program named in its header, and its message.
fn header(line: &[u8]) -> (bool, Option<&[u8]>, &[u8]) {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match split(line) {
        Line::Tagged { program, message, .. } => {
            (matches!(program, b"sshd" | b"sshd-session" | b"sshd-auth"), Some(program), message)
        }
        Line::Untagged { text, .. } => (false, None, text),
        Line::Bare(m) => (!m.is_empty() && !m.first().is_some_and(|&c| c.is_ascii_digit() || c == b'<'), None, m),
    }
}

/// Attacker-written bytes, with control characters and non-ASCII escaped.
fn show(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}
