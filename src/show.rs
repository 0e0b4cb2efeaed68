//! Every text and JSON view a command prints: the dry run, the sync
//! summary, `list` (table or JSON lines), `explain`, `check`, `rules`, and
//! the JSON lines handed to hooks. Views only read: they take the state
//! and the outcome and write to the given output; they decide nothing.

use std::io::{self, Write};
use std::net::IpAddr;
use std::path::Path;

use serde::Serialize;
use tracing::{info, warn};

use crate::addr::ip_order;
use crate::allow::AllowSource;
use crate::config::Config;
use crate::engine::Batch;
use crate::parse::time::iso;
use crate::parse::{Rule, ScanStats};
use crate::rules::{self, Outcome, Policy, Spared};
use crate::state::{Record, State};

/// The host name, for hook messages and `list --json`.
pub fn hostname() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into())
}

/// The optional keys of a JSON line, written in this order after the record's.
#[derive(Default, Serialize)]
pub struct Extra<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// `list --json`: which ban by the rules this is (repeat offenders).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ban: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    /// `login` events: the account logged into.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "lossy_opt")]
    pub user: Option<&'a [u8]>,
    /// Where the address is, when a geolocation database is configured
    /// (hooks): ISO country code, city, AS number, organisation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
}

impl Extra<'_> {
    /// With what the databases know about the address.
    pub fn at(self, p: crate::geo::Place) -> Self {
        Extra { country: p.country, city: p.city, asn: p.asn, org: p.org, ..self }
    }
}

#[derive(Serialize)]
struct Line<'a> {
    event: &'a str,
    addr: &'a str,
    host: &'a str,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    record: Option<RecordJson<'a>>,
    #[serde(flatten)]
    extra: Extra<'a>,
}

#[derive(Serialize)]
struct RecordJson<'a> {
    #[serde(serialize_with = "hits")]
    rules: &'a Record,
    #[serde(serialize_with = "lossy_all")]
    users: &'a [Vec<u8>],
    first: String,
    last: String,
}

/// Bytes from the log as a JSON string: invalid UTF-8 becomes U+FFFD (as
/// the hooks' README documents), so the line is always valid UTF-8.
fn lossy<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(b))
}

fn lossy_opt<S: serde::Serializer>(b: &Option<&[u8]>, s: S) -> Result<S::Ok, S::Error> {
    lossy(b.unwrap_or_default(), s)
}

fn lossy_all<S: serde::Serializer>(v: &&[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|u| String::from_utf8_lossy(u)))
}

/// `{"invalid-user":3,"kex-reset":1}`, in rule order.
fn hits<S: serde::Serializer>(r: &&Record, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(Rule::ALL.iter().filter(|x| r.hits[**x as usize] > 0).map(|x| (x.name(), r.hits[*x as usize])))
}

/// A JSON line per address for hooks and `list --json`.
pub fn json_line(ip: &str, rec: Option<&Record>, event: &str, host: &str, extra: Extra<'_>) -> String {
    let record = rec.map(|r| RecordJson { rules: r, users: &r.users, first: iso(r.first), last: iso(r.last) });
    serde_json::to_string(&Line { event, addr: ip, host, record, extra }).unwrap_or_default()
}

/// `sync --dry-run`: what would be added, spared and expired.
pub fn dry_run(o: &mut impl Write, st: &State, out: &Outcome) -> io::Result<()> {
    for ip in &out.listed {
        let rec = &st.records[ip];
        write!(o, "+ {ip}\t{}", rec.rules_summary())?;
        for (i, u) in rec.users.iter().enumerate() {
            write!(o, "{}{}", if i == 0 { "\tusers: " } else { "," }, u.escape_ascii())?;
        }
        writeln!(o)?;
    }
    for (ip, why) in &out.spared {
        writeln!(o, "= {ip}\t{}\tspared: {}", st.records[ip].rules_summary(), spared(why))?;
    }
    for ip in &out.expired {
        writeln!(o, "- {ip}\texpired")?;
    }
    Ok(())
}

/// The two lines a sync logs: what was read, and what became of the addresses.
pub fn summary(cfg: &Config, st: &ScanStats, b: &Batch, out: &Outcome, total: usize, known: usize) {
    let hits: Vec<String> = cfg.rules.iter().map(|r: Rule| format!("{}={}", r.name(), st.hits(r))).collect();
    let mut skipped = Vec::new();
    if st.overlong > 0 {
        skipped.push(format!("{} overlong lines", st.overlong));
    }
    if st.bad_address > 0 {
        skipped.push(format!("{} lines with an unparsable address", st.bad_address));
    }
    if b.damaged > 0 {
        skipped.push(format!("{} damaged gzip files", b.damaged));
    }
    if st.unrecognised_header > 0 {
        skipped.push(format!("{} candidate lines with an unrecognised header", st.unrecognised_header));
    }
    if st.duplicates > 0 {
        skipped.push(format!("{} duplicate lines (resent by the forwarder)", st.duplicates));
    }
    if st.double_host > 0 {
        warn!(
            "{} lines carry a second host name after the collector's (\"STAMP COLLECTOR SENDER sshd[PID]:\"): \
             read under the sender's name; the sender adds its own name (OpenBSD syslogd -h): drop -h on \
             senders towards an OpenBSD collector",
            st.double_host
        );
    }
    if st.bare_events > 0 {
        warn!(
            "{} events came from bare lines (sshd -E): OpenSSH writes newlines in user names unescaped there, \
             so a crafted user name can forge a whole line; log to syslog or the journal where you can",
            st.bare_events
        );
    }
    let (allowed, accepted) = out.spared.iter().fold((0, 0), |(a, l), (_, why)| match why {
        Spared::Allowed(_) => (a + 1, l),
        Spared::Accepted => (a, l + 1),
    });
    info!(
        "read {} files, {} new lines, {:.1} MB; matches: {}; logins: {}{}",
        b.files,
        st.lines,
        st.bytes as f64 / 1e6,
        hits.join(" "),
        st.logins,
        if skipped.is_empty() { String::new() } else { format!("; skipped: {}", skipped.join(", ")) }
    );
    let mut expired = String::new();
    if !out.expired.is_empty() || !out.lapsed.is_empty() {
        expired = format!(", {} expired", out.expired.len() + out.lapsed.len());
    }
    if out.forgotten + out.capped > 0 {
        expired.push_str(&format!(
            ", {} forgotten ({} quiet, {} over --max-records)",
            out.forgotten + out.capped,
            out.forgotten,
            out.capped
        ));
    }
    info!(
        "addresses: {} new{expired}, {} listed, {known} known; spared {} ({} allowlist, {} accepted login)",
        out.listed.len(),
        total,
        allowed + accepted,
        allowed,
        accepted
    );
}

/// Which threshold a record met, in words.
fn met(m: rules::Met, p: &Policy) -> String {
    let window = p.window.map(|w| format!(" within {w}s")).unwrap_or_default();
    match m {
        rules::Met::Pool => {
            format!("--threshold {}{window} (the rules without their own threshold together)", p.threshold)
        }
        rules::Met::Rule(rule, n) => {
            format!("{} alone reached its own threshold {n}{window} (--rule-threshold)", rule.name())
        }
    }
}

/// Why an address was spared, in words.
pub fn spared(why: &Spared) -> String {
    match why {
        Spared::Allowed(e) => format!("allowlist {} ({})", e.net, allow_source(&e.source)),
        Spared::Accepted => "logged in successfully (--ban-accepted lists it anyway)".to_string(),
    }
}

/// Where an allowlist entry came from, in words.
pub fn allow_source(s: &AllowSource) -> String {
    match s {
        AllowSource::Reserved(why) => format!("{why}, never listed"),
        AllowSource::Flag => "--allow".to_string(),
        AllowSource::File { path, line } => format!("{}:{line}", path.display()),
    }
}

/// `list`: the listed addresses (every record with `all`), then the
/// manual bans, as a table or JSON lines.
pub fn list(o: &mut impl Write, cfg: &Config, st: &State, all: bool, json: bool) -> io::Result<()> {
    let mut ips: Vec<(&IpAddr, &Record)> = st.records.iter().filter(|(_, r)| all || r.listed.is_some()).collect();
    ips.sort_by(|x, y| ip_order(*x.0, *y.0));
    // A repeat offender's ban lasts longer (`--expire-factor`).
    let expire = |r: &Record| {
        cfg.policy.ban_length(r.bans).map(|e| iso(r.last.saturating_add(e))).unwrap_or_else(|| "never".into())
    };
    let host = hostname();
    let shown = |ip: IpAddr| cfg.policy.net(ip);
    if !json {
        writeln!(o, "{:<40} {:<20} {:<20} {:<8} {:<20} hits", "address", "first", "last", "source", "expires")?;
    }
    for (ip, r) in ips {
        let source = if r.listed.is_some() { "rule" } else { "seen" };
        if json {
            let ban = r.listed.map(|_| r.bans.max(1));
            let extra = Extra { source: Some(source), expires: Some(expire(r)), ban, ..Extra::default() };
            writeln!(o, "{}", json_line(&shown(*ip).to_string(), Some(r), "listed", &host, extra))?;
        } else {
            let (first, last) = (iso(r.first), iso(r.last));
            writeln!(
                o,
                "{:<40} {first:<20} {last:<20} {source:<8} {:<20} {}",
                shown(*ip).to_string(),
                expire(r),
                r.rules_summary()
            )?;
        }
    }
    // --subnet-after: the networks listed in place of their members.
    for e in rules::subnet::escalated(st, &cfg.policy, &cfg.output.allow) {
        let reason = format!("{} listed addresses (--subnet-after)", e.members.len());
        if json {
            let extra = Extra { source: Some("subnet"), reason: Some(&reason), ..Extra::default() };
            writeln!(o, "{}", json_line(&e.net.to_string(), None, "listed", &host, extra))?;
        } else {
            writeln!(o, "{:<40} {:<20} {:<20} {:<8} {:<20} {reason}", e.net.to_string(), "-", "-", "subnet", "-")?;
        }
    }
    for (path, inc) in &st.includes {
        let source = format!("include:{}", path.display());
        for net in &inc.nets {
            if json {
                let extra = Extra { source: Some(&source), since: Some(iso(inc.time)), ..Extra::default() };
                writeln!(o, "{}", json_line(&net.to_string(), None, "listed", &host, extra))?;
            } else {
                writeln!(
                    o,
                    "{:<40} {:<20} {:<20} {source} serial {}",
                    net.to_string(),
                    iso(inc.time),
                    "-",
                    serial(inc)
                )?;
            }
        }
    }
    for (net, m) in &st.manual {
        let until = m.until.map(iso).unwrap_or_else(|| "never".into());
        if json {
            let extra = Extra {
                source: Some("manual"),
                since: Some(iso(m.since)),
                expires: Some(until),
                reason: Some(&m.reason),
                ..Extra::default()
            };
            writeln!(o, "{}", json_line(&net.to_string(), None, "listed", &host, extra))?;
        } else {
            writeln!(
                o,
                "{:<40} {:<20} {:<20} {:<8} {until:<20} {}",
                net.to_string(),
                iso(m.since),
                "-",
                "manual",
                m.reason
            )?;
        }
    }
    Ok(())
}

fn serial(inc: &crate::state::Included) -> String {
    inc.serial.map_or("-".to_string(), |s| s.to_string())
}

/// `explain ADDR`: why `ip` is or is not listed.
pub fn explain(o: &mut impl Write, cfg: &Config, st: &State, ip: IpAddr, listed_in: Option<&Path>) -> io::Result<()> {
    let listed = listed_in.map_or("not listed".into(), |p| format!("listed in {}", p.display()));
    writeln!(o, "{ip}: {listed}")?;
    for (net, m) in st.manual.iter().filter(|(n, _)| n.contains_ip(ip)) {
        let until = m.until.map(iso).unwrap_or_else(|| "never".into());
        writeln!(o, "  manual ban of {net} since {} until {until}: {}", iso(m.since), m.reason)?;
    }
    for (path, inc) in &st.includes {
        for net in inc.nets.iter().filter(|n| n.contains_ip(ip)) {
            let key = inc.key.as_ref().map_or("unsigned".to_string(), |k| format!("signed by key {k}"));
            writeln!(
                o,
                "  {net} is in included list {} (serial {}, generated {}, accepted {}, {key})",
                path.display(),
                serial(inc),
                iso(inc.time),
                iso(inc.loaded)
            )?;
        }
    }
    match st.records.get(&cfg.policy.key(ip)) {
        None => writeln!(o, "  never seen in the logs read")?,
        Some(r) => {
            writeln!(o, "  seen {} to {}", iso(r.first), iso(r.last))?;
            if !r.hosts.is_empty() {
                let names: Vec<String> = r.hosts.iter().map(|h| st.host_name(*h)).collect();
                writeln!(o, "  reported by {} hosts: {}", names.len(), names.join(", "))?;
            }
            for rule in Rule::ALL.iter().filter(|x| r.hits[**x as usize] > 0) {
                let on = if cfg.rules.contains(*rule) { "" } else { " (rule not enabled now)" };
                writeln!(o, "  {}: {} hits{on}", rule.name(), r.hits[*rule as usize])?;
            }
            if !r.users.is_empty() {
                let users: Vec<String> =
                    r.users.iter().map(|u| format!("{:?}", u.escape_ascii().to_string())).collect();
                writeln!(o, "  user names tried (latest last): {}", users.join(", "))?;
            }
            if r.logins > 0 {
                writeln!(o, "  logged in successfully {} times, last {}", r.logins, iso(r.last_login))?;
            }
            let p = &cfg.policy;
            let window = p.window.map(|w| format!(" within {w}s")).unwrap_or_default();
            match r.listed {
                Some(t) => {
                    writeln!(o, "  listed since {} by the rules", iso(t))?;
                    if let Some(m) = rules::met(r, p) {
                        writeln!(o, "  threshold met: {}", met(m, p))?;
                    }
                    if let (Some(e), Some(why)) = (p.ban_length(r.bans), p.ban_why(r.bans)) {
                        writeln!(o, "  {why}")?;
                        writeln!(o, "  leaves the list at {} unless seen again", iso(r.last.saturating_add(e)))?;
                    }
                }
                None if rules::qualifies(r, p) => {
                    let m = rules::met(r, p).map(|m| met(m, p)).unwrap_or_default();
                    writeln!(o, "  meets the threshold ({}{window}) but is not listed", p.threshold)?;
                    writeln!(o, "  threshold met: {m}")?
                }
                None => writeln!(
                    o,
                    "  below the threshold: {} recent attacks, {} needed{window}",
                    r.recent.len(),
                    p.threshold
                )?,
            }
            if r.listed.is_none() {
                repeat_offender(o, p, r, crate::parse::time::Clock::system().now())?;
            }
            for (rule, times) in r.own_times().filter(|_| r.listed.is_none() && !rules::qualifies(r, p)) {
                if let Some(n) = p.own_threshold(rule) {
                    writeln!(o, "  {} counts apart: {} recent, {n} needed{window}", rule.name(), times.len())?;
                }
            }
            if r.logins > 0 && !p.ban_accepted {
                writeln!(o, "  spared: it logged in successfully (--ban-accepted lists it anyway)")?;
            }
        }
    }
    if let Some(e) = cfg.output.allow.find(ip) {
        writeln!(o, "  spared: allowlist {} ({})", e.net, allow_source(&e.source))?;
    }
    escalated(o, cfg, st, ip)?;
    Ok(())
}

/// `explain` of an address not listed now: its past bans, and how long
/// the next one would last.
fn repeat_offender(o: &mut impl Write, p: &rules::Policy, r: &Record, now: i64) -> io::Result<()> {
    if r.bans == 0 {
        return Ok(());
    }
    let n = p.bans_at(r, now);
    let was = if n == r.bans { String::new() } else { format!(", {n} after the quiet time since") };
    let next = p.ban_why(n + 1).map(|w| format!("; a next ban would be the {w}")).unwrap_or_default();
    writeln!(o, "  banned {} times by the rules, the last ending {}{was}{next}", r.bans, iso(r.quiet))
}

/// `explain`: the `--subnet-after` network that lists `ip` with its
/// neighbours, if any.
fn escalated(o: &mut impl Write, cfg: &Config, st: &State, ip: IpAddr) -> io::Result<()> {
    let esc = rules::subnet::escalated(st, &cfg.policy, &cfg.output.allow);
    let Some(e) = rules::subnet::covering(&esc, ip) else { return Ok(()) };
    let sub = cfg.policy.subnet.map_or(0, |s| s.after);
    writeln!(
        o,
        "  covered by the escalated network {}: {} of its addresses are listed (--subnet-after {sub})",
        e.net,
        e.members.len()
    )?;
    let key = cfg.policy.key(ip);
    if let Some(hole) = e.spared.iter().find(|h| h.contains_ip(key)) {
        writeln!(o, "  but {hole} is carved out of it: it logged in successfully")?;
    } else if let Some(a) = cfg.output.allow.find(ip) {
        writeln!(o, "  but {} is carved out of it: allowlist", a.net)?;
    }
    Ok(())
}

/// `check`: "configuration OK", or one line per problem.
pub fn check(o: &mut impl Write, problems: &[String]) -> io::Result<()> {
    if problems.is_empty() {
        return writeln!(o, "configuration OK");
    }
    problems.iter().try_for_each(|p| writeln!(o, "{p}"))
}

/// `rules`: name, default or opt-in, and what each matches.
/// `badguys rules`: every rule with what the README's rules table says of
/// it (both come from [`Rule::info`]).
pub fn rules(o: &mut impl Write) -> io::Result<()> {
    for r in Rule::ALL {
        let i = r.info();
        let on = if r.default_on() { "default" } else { "opt-in" };
        writeln!(o, "{}  ({on}, recommended threshold {})", r.name(), i.threshold)?;
        writeln!(o, "    {}", i.summary)?;
        writeln!(o, "    example: {}", i.example)?;
        writeln!(o, "    could count a real user: {}", i.risk)?;
        if let Some(n) = Policy::default().own_threshold(r) {
            writeln!(
                o,
                "    counts apart at its own threshold {n} (--rule-threshold {}=N): never added to the other rules' --threshold",
                r.name()
            )?;
        }
    }
    writeln!(
        o,
        "\nThe hits of every rule without its own threshold count together toward --threshold; \
         --rule-threshold RULE=N gives a rule its own (its hits then count apart, within --window)."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_prints_every_rule_with_its_example_risk_and_threshold() {
        let mut out = Vec::new();
        rules(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for r in Rule::ALL {
            let i = r.info();
            assert!(text.contains(&format!("{}  (", r.name())), "{}", r.name());
            assert!(text.contains(i.example) && text.contains(i.risk), "{}", r.name());
            assert!(text.contains(&format!("recommended threshold {})", i.threshold)), "{}", r.name());
        }
    }

    /// A string from the log as every JSON line writes it.
    fn s(b: &[u8]) -> String {
        serde_json::to_string(&String::from_utf8_lossy(b)).unwrap()
    }

    #[test]
    fn plain_and_empty() {
        assert_eq!(s(b""), r#""""#);
        assert_eq!(s(b"198.51.100.7"), r#""198.51.100.7""#);
        assert_eq!(s("héllo €".as_bytes()), "\"héllo €\"");
    }

    #[test]
    fn quotes_and_backslashes() {
        assert_eq!(s(br#"a"b"#), r#""a\"b""#);
        assert_eq!(s(br"a\b"), r#""a\\b""#);
        assert_eq!(s(br#"\""#), r#""\\\"""#);
        // A forward slash needs no escape.
        assert_eq!(s(b"a/b"), r#""a/b""#);
    }

    #[test]
    fn control_bytes() {
        assert_eq!(s(b"\n\r\t\x08\x0c"), r#""\n\r\t\b\f""#);
        assert_eq!(s(b"\x00\x01\x1b\x1f"), r#""\u0000\u0001\u001b\u001f""#);
        // Space and DEL are not control characters for JSON.
        assert_eq!(s(b" \x7f"), "\" \x7f\"");
        assert_eq!(s(b"x from 198.51.100.9 port 22\nInvalid user"), r#""x from 198.51.100.9 port 22\nInvalid user""#);
    }

    #[test]
    fn invalid_utf8() {
        assert_eq!(s(b"\xff"), "\"\u{fffd}\"");
        assert_eq!(s(b"a\xffb"), "\"a\u{fffd}b\"");
        // One replacement per maximal invalid sequence, like from_utf8_lossy.
        assert_eq!(s(b"\xf0\x9f\x98"), "\"\u{fffd}\"");
        assert_eq!(s(b"\xff\xfe"), "\"\u{fffd}\u{fffd}\"");
        assert_eq!(s(b"\xc3(\""), "\"\u{fffd}(\\\"\"");
        let bytes = b"ro\xe9ot\xc0\x80x";
        assert_eq!(s(bytes), format!("\"{}\"", String::from_utf8_lossy(bytes)));
    }

    #[test]
    fn json_lines_keep_their_key_order_and_escape_the_log_bytes() {
        let mut r = Record { first: 0, last: 60, ..Record::default() };
        r.hits[Rule::InvalidUser as usize] = 3;
        r.users = vec![b"ad\"min\n".to_vec(), b"\xff\xfex".to_vec()];
        let extra = Extra { user: Some(b"ro\x01ot"), ..Extra::default() };
        assert_eq!(
            json_line("192.0.2.1", Some(&r), "login", "h", extra),
            "{\"event\":\"login\",\"addr\":\"192.0.2.1\",\"host\":\"h\",\"rules\":{\"invalid-user\":3},\
             \"users\":[\"ad\\\"min\\n\",\"\u{fffd}\u{fffd}x\"],\"first\":\"1970-01-01T00:00:00Z\",\
             \"last\":\"1970-01-01T00:01:00Z\",\"user\":\"ro\\u0001ot\"}"
        );
        let extra = Extra {
            source: Some("manual"),
            since: Some("s".into()),
            expires: Some("e".into()),
            reason: Some("r"),
            ..Extra::default()
        };
        assert_eq!(
            json_line("198.51.100.0/24", None, "listed", "h", extra),
            r#"{"event":"listed","addr":"198.51.100.0/24","host":"h","source":"manual","since":"s","expires":"e","reason":"r"}"#
        );
    }
}
