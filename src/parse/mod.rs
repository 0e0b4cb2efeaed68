//! From bytes to events: finds candidate lines in a buffer of complete lines
//! with one multi-literal search, splits each candidate at its header, checks
//! the program is sshd, and classifies the message into an [`Event`].
//!
//! Owns the cross-line logic of the log format: pairing a kex error with the
//! `Connection reset by` that follows it from the same process, rsyslog's
//! `message repeated N times: [ … ]` and syslogd's `last message repeated N
//! times`. A line that contains none of the needles is never split, never
//! copied and never allocates.

mod authlog;
mod dedup;
mod families;
mod header;
mod rule;
mod sshd;
pub mod time;

use std::collections::HashMap;
use std::net::IpAddr;

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};

pub use dedup::{Dedup, DEDUP_MAX};
pub use header::{split, split_shape, Line, Shape, Stamp};
pub use rule::{Rule, RuleSet, UnknownRule};
pub use sshd::{classify, Message};
pub use time::Clock;

/// What an event reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum What {
    Attack(Rule),
    /// A successful login: the address is spared, never banned.
    Login,
}

impl What {
    pub fn name(self) -> &'static str {
        match self {
            What::Attack(r) => r.name(),
            What::Login => "accepted",
        }
    }
}

/// One finding, borrowed from the line it was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event<'a> {
    pub what: What,
    pub ip: IpAddr,
    /// The user name as logged (attacker-controlled bytes), where the
    /// message has one.
    pub user: Option<&'a [u8]>,
    /// How many times it happened (`message repeated N times`).
    pub count: u32,
    pub host: &'a [u8],
    pub pid: Option<u32>,
    pub stamp: Stamp<'a>,
}

/// Counters kept while scanning.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Bytes scanned.
    pub bytes: u64,
    /// Lines scanned.
    pub lines: u64,
    /// Lines that contained a needle and were split.
    pub candidates: u64,
    /// Events per rule, indexed by `Rule as usize`, counting repeats.
    pub hits: [u64; Rule::ALL.len()],
    /// Successful logins seen.
    pub logins: u64,
    /// Messages of a known shape whose address did not parse.
    pub bad_address: u64,
    /// Lines longer than the scanner accepts (their bytes are not parsed).
    pub overlong: u64,
    /// Events from bare lines (`sshd -E`), where OpenSSH writes control
    /// characters of user names unescaped: a crafted name can forge a line.
    pub bare_events: u64,
    /// Candidate lines whose header was not understood (a stamp followed by
    /// no tag, or a line opening with a digit or `<` that is no sshd
    /// message): named in the summary, never silently dropped.
    pub unrecognised_header: u64,
    /// Lines with a second host name after the collector's
    /// (`STAMP COLLECTOR SENDER sshd[1]: `): read with the sender's name;
    /// the sender adds its name with `-h` towards an OpenBSD collector.
    pub double_host: u64,
    /// sshd lines identical to one read lately (a RELP resend, a journal
    /// upload resumed): dropped, counted once.
    pub duplicates: u64,
}

impl ScanStats {
    pub fn hits(&self, r: Rule) -> u64 {
        self.hits[r as usize]
    }
}

/// What the scanner made of the last line it was given, for `badguys test`
/// ([`Scanner::outcome`]). Kept as one store per candidate line, so the
/// normal path pays nothing for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No needle in the line: never split.
    NoNeedle,
    /// Longer than [`MAX_LINE`].
    Overlong,
    /// A header naming a program other than sshd.
    OtherProgram,
    /// A stamp and host with no tag, or a bare line that is no message.
    Header,
    /// At least one event was emitted.
    Event,
    /// A rule recognised it, but the rule is not in the set.
    RuleOff(Rule, IpAddr),
    /// A known shape whose address did not parse.
    BadAddress,
    /// A kex error, waiting for the `Connection reset by` of its process.
    KexWaiting,
    /// An sshd message that no rule recognises.
    NoRule,
    /// A line identical to one read lately, stamp fraction and all: a
    /// resend (RELP, journal-upload), not counted again.
    Duplicate,
}

/// Longest line the scanner parses; sshd truncates its messages far below
/// this, so anything longer is not sshd's.
pub const MAX_LINE: usize = 64 * 1024;

/// A kex error and its reset are two consecutive log calls of one process;
/// a pending kex error older than this many bytes of log is forgotten, so a
/// reused pid cannot complete a stale pair.
const KEX_WINDOW: u64 = 1 << 20;
const KEX_PENDING_MAX: usize = 16 * 1024;
/// The pending kex errors are swept of those past [`KEX_WINDOW`] once they
/// are this many (or twice as many as the last sweep left): a kex error
/// that no reset follows would otherwise stay until the map held
/// [`KEX_PENDING_MAX`], and a map that size misses the cache on the lookup
/// every sshd message makes.
const KEX_SWEEP: usize = 1024;

/// The last event emitted, for `last message repeated N times`.
#[derive(Debug)]
struct Last {
    what: What,
    ip: IpAddr,
    user: Option<Vec<u8>>,
    pid: Option<u32>,
    /// The host name's hash: a repeat counts only for the same host.
    host: u64,
    /// Offset of the newline that ends the line it came from.
    end: u64,
}

/// Where a line sits: enough to pair kex lines and repeats.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    host: &'a [u8],
    pid: Option<u32>,
    stamp: Stamp<'a>,
    bare: bool,
    start: u64,
    end: u64,
}

/// Scans buffers of complete lines in file order. One scanner should see all
/// files of one log in order (oldest rotated file first) so that pairs that
/// straddle a rotation are kept.
pub struct Scanner {
    rules: RuleSet,
    finder: AhoCorasick,
    kex: HashMap<(u64, u32), u64, foldhash::fast::RandomState>,
    /// How many pending kex errors make the next sweep ([`KEX_SWEEP`]).
    kex_sweep: usize,
    kex_bare: Option<u64>,
    last: Option<Last>,
    offset: u64,
    stats: ScanStats,
    /// The lines read lately, to drop duplicates (the engine keeps it in
    /// the state between runs).
    pub dedup: Dedup,
    /// sshd lines read per host name since the last
    /// [`Scanner::take_host_lines`] (at most [`HOST_LINES_MAX`] names).
    host_lines: HashMap<Vec<u8>, u64, foldhash::fast::RandomState>,
    outcome: Outcome,
}

/// The most host names [`Scanner::take_host_lines`] tells apart; the lines
/// of further hosts are not counted per host.
pub const HOST_LINES_MAX: usize = 4096;

impl Scanner {
    /// A scanner that reports attacks of `rules` and every successful login.
    pub fn new(rules: RuleSet) -> Scanner {
        let mut needles: Vec<&[u8]> = vec![sshd::ACCEPTED_NEEDLE, sshd::REPEAT_NEEDLE];
        for r in rules.iter() {
            needles.extend_from_slice(sshd::needles(r));
        }
        let finder = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&needles)
            .expect("a handful of literals always builds");
        Scanner {
            rules,
            finder,
            kex: HashMap::default(),
            kex_sweep: KEX_SWEEP,
            kex_bare: None,
            last: None,
            offset: 0,
            stats: ScanStats::default(),
            dedup: Dedup::default(),
            host_lines: HashMap::default(),
            outcome: Outcome::NoNeedle,
        }
    }

    pub fn stats(&self) -> &ScanStats {
        &self.stats
    }

    /// What became of the last candidate line of the last [`Scanner::scan`]
    /// ([`Outcome::NoNeedle`] when it had none): `badguys test` scans one
    /// line at a time and asks.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// Forgets everything about the stream scanned so far (pending kex
    /// errors, the last event, offsets, counters), keeping the compiled
    /// prefilter: as good as new, without building it again.
    pub fn reset(&mut self) {
        self.kex.clear();
        self.kex_sweep = KEX_SWEEP;
        self.kex_bare = None;
        self.last = None;
        self.offset = 0;
        self.stats = ScanStats::default();
        self.dedup = Dedup::default();
        self.host_lines.clear();
    }

    /// The sshd lines (those the prefilter let through, duplicates
    /// included) read per host name since the last call.
    pub fn take_host_lines(&mut self) -> HashMap<Vec<u8>, u64, foldhash::fast::RandomState> {
        std::mem::take(&mut self.host_lines)
    }

    /// Counts a line that the reader dropped for its length. Its bytes
    /// never reach [`Scanner::scan`], so whatever waits for "the next line"
    /// (a bare kex error, a repeat) is forgotten here.
    pub fn note_overlong(&mut self) {
        self.stats.overlong += 1;
        self.stats.lines += 1;
        self.last = None;
        self.kex_bare = None;
    }

    /// Scans `buf`, which holds complete lines (the last may lack its
    /// newline at the end of a file), calling `emit` for every event.
    pub fn scan(&mut self, buf: &[u8], emit: &mut dyn FnMut(&Event<'_>)) {
        self.outcome = Outcome::NoNeedle;
        self.stats.bytes += buf.len() as u64;
        self.stats.lines += memchr::memchr_iter(b'\n', buf).count() as u64;
        if buf.last().is_some_and(|&b| b != b'\n') {
            self.stats.lines += 1;
        }
        let mut pos = 0;
        while pos < buf.len() {
            let Some(m) = self.finder.find(Input::new(buf).span(pos..buf.len())) else { break };
            // syslog never writes a NUL: a run of them is a crash's zero
            // fill. The text after it starts a line; the text before it
            // was cut short (its address may be cut too), so it is no line.
            let start = memchr::memrchr2(b'\n', 0, &buf[pos..m.start()]).map_or(pos, |i| pos + i + 1);
            let end = memchr::memchr2(b'\n', 0, &buf[m.end()..]).map_or(buf.len(), |i| m.end() + i);
            if buf.get(end) != Some(&0) {
                self.line(&buf[start..end], self.offset + start as u64, self.offset + end as u64, emit);
            }
            pos = end + 1;
        }
        self.offset += buf.len() as u64;
    }

    fn line(&mut self, line: &[u8], start: u64, end: u64, emit: &mut dyn FnMut(&Event<'_>)) {
        self.stats.candidates += 1;
        if line.len() > MAX_LINE {
            self.stats.overlong += 1;
            self.outcome = Outcome::Overlong;
            return;
        }
        let line = trim_line(line);
        let (parts, shape) = split_shape(line);
        if shape == Shape::DoubleHost {
            self.stats.double_host += 1;
        }
        match parts {
            Line::Tagged { stamp, host, program, pid, message } => {
                if matches!(program, b"sshd" | b"sshd-session" | b"sshd-auth") {
                    let full = self.host_lines.len() >= HOST_LINES_MAX;
                    match self.host_lines.get_mut(host) {
                        Some(n) => *n += 1,
                        None if !full => {
                            self.host_lines.insert(host.to_vec(), 1);
                        }
                        None => {}
                    }
                    if let Stamp::Syslog(t) | Stamp::Rfc3339(t) = stamp {
                        if !dedup::may_repeat(t, message) && {
                            let k = self.dedup.key(t, host, program, pid, message);
                            self.dedup.seen(k)
                        } {
                            self.stats.duplicates += 1;
                            self.outcome = Outcome::Duplicate;
                            return;
                        }
                    }
                    let ctx = Ctx { host, pid, stamp, bare: false, start, end };
                    self.message(ctx, message, 1, emit);
                } else {
                    self.outcome = Outcome::OtherProgram;
                }
            }
            Line::Untagged { stamp, host, text } => {
                if !self.syslogd_repeat(text, stamp, host, start, end, emit) {
                    self.stats.unrecognised_header += 1;
                    self.outcome = Outcome::Header;
                }
            }
            Line::Bare(message) => {
                if message.first().is_some_and(|&c| c.is_ascii_digit() || c == b'<') {
                    self.stats.unrecognised_header += 1;
                    self.outcome = Outcome::Header;
                    return;
                }
                let ctx = Ctx { host: b"", pid: None, stamp: Stamp::None, bare: true, start, end };
                self.message(ctx, message, 1, emit);
            }
        }
    }

    fn message(&mut self, ctx: Ctx<'_>, msg: &[u8], count: u32, emit: &mut dyn FnMut(&Event<'_>)) {
        let (msg, preauth) = match msg.strip_suffix(b" [preauth]") {
            Some(m) => (m, true),
            None => (msg, false),
        };
        if count == 1 {
            if let Some((n, inner)) = rsyslog_repeat(msg) {
                return self.message(ctx, inner, n, emit);
            }
        }
        let pending = self.take_kex(&ctx);
        let mut count = count;
        let (what, ip, user) = match classify(msg, preauth) {
            Message::Attack { rule, ip, user } => (What::Attack(rule), ip, user),
            Message::Attacks { rule, ip, n } => {
                count = count.saturating_mul(n);
                (What::Attack(rule), ip, None)
            }
            Message::Accepted { ip, user } => (What::Login, ip, Some(user)),
            Message::Reset { ip, .. } if pending => (What::Attack(Rule::KexReset), ip, None),
            // A reset during authentication, with no kex error before it.
            Message::Reset { ip, preauth: true } => (What::Attack(Rule::PreauthDisconnect), ip, None),
            Message::KexError => {
                self.put_kex(&ctx);
                self.outcome = Outcome::KexWaiting;
                return;
            }
            Message::BadAddress => {
                self.stats.bad_address += 1;
                self.outcome = Outcome::BadAddress;
                return;
            }
            Message::Reset { .. } | Message::Other => {
                self.outcome = Outcome::NoRule;
                return;
            }
        };
        if ctx.bare {
            self.stats.bare_events += 1;
        }
        self.emit(Event { what, ip, user, count, host: ctx.host, pid: ctx.pid, stamp: ctx.stamp }, ctx.end, emit);
    }

    fn emit(&mut self, ev: Event<'_>, end: u64, emit: &mut dyn FnMut(&Event<'_>)) {
        match ev.what {
            What::Attack(r) if !self.rules.contains(r) => {
                self.outcome = Outcome::RuleOff(r, ev.ip);
                return;
            }
            What::Attack(r) => self.stats.hits[r as usize] += u64::from(ev.count),
            What::Login => self.stats.logins += u64::from(ev.count),
        }
        self.outcome = Outcome::Event;
        emit(&ev);
        let user = match (self.last.take().and_then(|l| l.user), ev.user) {
            (Some(mut buf), Some(u)) => {
                buf.clear();
                buf.extend_from_slice(u);
                Some(buf)
            }
            (_, u) => u.map(<[u8]>::to_vec),
        };
        let host = dedup::hash(ev.host);
        self.last = Some(Last { what: ev.what, ip: ev.ip, user, pid: ev.pid, host, end });
    }

    /// `last message repeated N times` repeats the line just before it,
    /// when that line is of the same host (in a collector's fleet file the
    /// line before may be another host's). False when `text` is no such
    /// line.
    fn syslogd_repeat(
        &mut self,
        text: &[u8],
        stamp: Stamp<'_>,
        host: &[u8],
        start: u64,
        end: u64,
        emit: &mut dyn FnMut(&Event<'_>),
    ) -> bool {
        let text = text.strip_prefix(b"--- ").unwrap_or(text);
        let text = text.strip_suffix(b" ---").unwrap_or(text);
        let Some(n) = text.strip_prefix(b"last message repeated ").and_then(repeat_count) else { return false };
        self.outcome = Outcome::NoRule;
        let Some(last) = self.last.take() else { return true };
        if last.end + 1 != start || last.host != dedup::hash(host) {
            return true;
        }
        self.outcome = Outcome::Event;
        match last.what {
            What::Attack(r) => self.stats.hits[r as usize] += u64::from(n),
            What::Login => self.stats.logins += u64::from(n),
        }
        let user = last.user.as_deref();
        emit(&Event { what: last.what, ip: last.ip, user, count: n, host, pid: last.pid, stamp });
        // A later `last message repeated` still refers to the same message.
        self.last = Some(Last { end, ..last });
        true
    }

    fn take_kex(&mut self, ctx: &Ctx<'_>) -> bool {
        if ctx.bare {
            return self.kex_bare.take().is_some_and(|e| e + 1 == ctx.start);
        }
        if self.kex.is_empty() {
            return false;
        }
        self.kex.remove(&kex_key(ctx)).is_some_and(|e| ctx.start.saturating_sub(e) <= KEX_WINDOW)
    }

    fn put_kex(&mut self, ctx: &Ctx<'_>) {
        if ctx.bare {
            self.kex_bare = Some(ctx.end);
            return;
        }
        if self.kex.len() >= self.kex_sweep {
            let now = ctx.start;
            self.kex.retain(|_, e| now.saturating_sub(*e) <= KEX_WINDOW);
            if self.kex.len() >= KEX_PENDING_MAX {
                self.kex.clear();
            }
            self.kex_sweep = (2 * self.kex.len()).clamp(KEX_SWEEP, KEX_PENDING_MAX);
        }
        self.kex.insert(kex_key(ctx), ctx.end);
    }
}

fn kex_key(ctx: &Ctx<'_>) -> (u64, u32) {
    // A hash of the host name: no allocation per line.
    (dedup::hash(ctx.host), ctx.pid.unwrap_or(0))
}

/// Drops a trailing `\r` and leading NUL bytes (left by a crash that
/// zero-filled the end of a log).
fn trim_line(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r'] = line {
        line = rest;
    }
    while let [0, rest @ ..] = line {
        line = rest;
    }
    line
}

/// rsyslog: `message repeated N times: [ MESSAGE]`.
fn rsyslog_repeat(msg: &[u8]) -> Option<(u32, &[u8])> {
    let rest = msg.strip_prefix(b"message repeated ")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let n = repeat_count(&rest[..digits])?;
    let inner = rest[digits..].strip_prefix(b" times: [")?.strip_suffix(b"]")?;
    let inner = &inner[inner.iter().take_while(|&&b| b == b' ').count()..];
    Some((n, inner))
}

/// `N`, `N times` or `N time`, with N from 1 up.
fn repeat_count(t: &[u8]) -> Option<u32> {
    let digits = t.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 9 {
        return None;
    }
    let rest = &t[digits..];
    if !(rest.is_empty() || rest == b" times" || rest == b" time") {
        return None;
    }
    let n: u32 = std::str::from_utf8(&t[..digits]).ok()?.parse().ok()?;
    (n > 0).then_some(n)
}
