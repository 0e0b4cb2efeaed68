//! The state file: a versioned text format, one record per line, that a
//! later version can still read and an admin can read with `less`.
//!
//! ```text
//! badguys-state 1
//! cursor  path=/var/log/auth.log  dev=2049  ino=1311  offset=81234  size=81234  fp=9f86d081884c7d65  done=0
//! meta    due=-  policy=9f86d081884c7d65  out=120,1727793800000000000  stale=0  gen=12  published=1
//! addr    198.51.100.7  first=1727793771  last=1727793800  hits=invalid-user:3,kex-reset:1  recent=1727793771,…  users=admin,te%20st  logins=0  login=0  listed=1727793800  was=1
//! manual  203.0.113.0/24  since=1727793000  until=-  reason=imported%20from%20/etc/badguys
//! manual  203.0.113.9  since=1727793000  until=-  same=1
//! published  198.51.100.7
//! host    web1  seen=1727793800
//! include /etc/badguys.fleet  serial=1727793700  time=1727793700  loaded=1727793760  key=9f86d081884c7d65  nets=192.0.2.9,2001:db8::/48
//! dedupkey  0123456789abcdef,fedcba9876543210
//! dedup   9f86d081884c7d65,…
//! end     3  fnv=1f3a64c0e2b9d857
//! ```
//!
//! Fields are tab-separated `key=value` pairs after the kind and the key;
//! unknown kinds and keys are ignored, so fields can be added (`gen=` and
//! `published=` of the meta line read as 0 and "not recorded" when
//! missing). `same=1` on a `manual` line stands for the reason of the
//! `manual` line before it (the entries found in the list file share one).
//! `published` lines, the set last published, `host` lines (the
//! host table: an `addr` line's `hosts=0,3` are indexes into it, in file
//! order), `include` lines (the last good copy of each included list) and
//! the `dedupkey` and `dedup` lines (the secret key of the duplicate
//! check and the hashes of the sshd lines read lately under it) are not counted
//! in the end marker, so a version that skips them still reads the file. Bytes outside
//! printable ASCII, and `%`, `,`, `=` and spaces, are percent-encoded (user
//! names are attacker-controlled). The `end N fnv=H` trailer is the last
//! line: N records tell a complete file from a truncated one, and H, the
//! FNV-1a 64 of every byte before the trailer, a damaged one (any single
//! changed byte changes it). A trailer without `fnv=` (written before it
//! existed) is accepted; the next save adds it.
//!
//! The file holds manual bans, so it is read as trusted input
//! ([`super::trust`]): never through a symlink, only a private file of
//! root or the running user.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::addr::{parse_ip, Net};
use crate::source::{Cursor, FileId};
use crate::state::{Host, Included, Manual, Meta, Record, State, HOSTS_MAX};
use crate::Error;

const MAGIC: &str = "badguys-state";
const VERSION: u32 = 1;

/// Why a state file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Corrupt {
    #[error("not a badguys state file (no \"{MAGIC} {VERSION}\" line at the top)")]
    NoHeader,
    #[error("written by a newer badguys (state format {0}; this one reads up to {VERSION})")]
    Newer(u32),
    #[error("truncated: no end marker")]
    Truncated,
    #[error("line {0}: {1}")]
    Line(usize, String),
    #[error("checksum mismatch: damaged")]
    Checksum,
}

/// The default state file.
pub fn default_path() -> PathBuf {
    if cfg!(target_os = "openbsd") {
        PathBuf::from("/var/db/badguys/state")
    } else {
        PathBuf::from("/var/lib/badguys/state")
    }
}

/// Reads a state file: `Ok(None)` when there is none yet, `Err(Corrupt)`
/// (inside `Ok(Some(Err))`) when it cannot be trusted, so the caller can
/// say so and rebuild from the logs.
/// A state file that is a symlink, not a regular file, someone else's, or
/// writable by group or others is an error, never read.
pub fn read(path: &Path) -> Result<Option<Result<State, Corrupt>>, Error> {
    Ok(super::read_trusted(path)?.map(|bytes| parse(&bytes)))
}

/// The start of the trailer line and whether its checksum matches, when
/// the last line is a trailer with one; `Ok(None)` otherwise.
fn verify(bytes: &[u8]) -> Result<Option<usize>, Corrupt> {
    let Some(body) = bytes.strip_suffix(b"\n") else { return Ok(None) };
    let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let last = &body[start..];
    let Some(sum) = last.strip_prefix(b"end\t").and_then(|t| t.splitn(2, |&b| b == b'\t').nth(1)) else {
        return Ok(None);
    };
    let Some(hex) = sum.strip_prefix(b"fnv=") else { return Ok(None) };
    if *hex != *format!("{:016x}", crate::fnv1a(&bytes[..start])).as_bytes() {
        return Err(Corrupt::Checksum);
    }
    Ok(Some(start))
}

pub fn parse(bytes: &[u8]) -> Result<State, Corrupt> {
    let summed = verify(bytes)?.is_some();
    // Written as ASCII; one validation pass, the lossy copy only for damage.
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => std::borrow::Cow::Borrowed(t),
        Err(_) => String::from_utf8_lossy(bytes),
    };
    let mut lines = text.split('\n').enumerate();
    let (_, head) = lines.next().ok_or(Corrupt::NoHeader)?;
    let version = head.strip_prefix(MAGIC).and_then(|v| v.trim().parse::<u32>().ok()).ok_or(Corrupt::NoHeader)?;
    if version > VERSION {
        return Err(Corrupt::Newer(version));
    }
    let mut st = State::default();
    let mut published = std::collections::BTreeSet::new();
    let mut count = 0usize;
    // Whether a `dedupkey` line came before the `dedup` line.
    let mut keyed = false;
    let mut ended = false;
    // The reason of the last `manual` line, which `same=1` repeats.
    let mut last_reason = None;
    for (i, line) in lines {
        let n = i + 1;
        let bad = |m: String| Corrupt::Line(n, m);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if ended {
            return Err(bad("data after the end marker".into()));
        }
        let mut f = line.split('\t');
        let kind = f.next().unwrap_or_default();
        match kind {
            "cursor" => {
                st.cursors.push(cursor(f).map_err(bad)?);
                count += 1;
            }
            "meta" => st.meta = meta(f).map_err(bad)?,
            "journal" => {
                for (k, v) in fields(f) {
                    if k == "cursor" {
                        st.journal = Some(String::from_utf8_lossy(&unescape(v).map_err(bad)?).into_owned());
                    }
                }
            }
            "addr" => {
                let ip = f.next().and_then(|s| parse_ip(s.as_bytes())).ok_or_else(|| bad("bad address".into()))?;
                st.records.insert(ip, super::record_line::parse(f).map_err(bad)?);
                count += 1;
            }
            "manual" => {
                let net: Net = f.next().unwrap_or_default().parse().map_err(|e| bad(format!("bad network: {e}")))?;
                st.manual.insert(net, manual(f, &mut last_reason).map_err(bad)?);
                count += 1;
            }
            "published" => {
                let net: Net = f.next().unwrap_or_default().parse().map_err(|e| bad(format!("bad network: {e}")))?;
                published.insert(net);
            }
            "host" if st.hosts.len() < HOSTS_MAX => {
                let name = f.next().map(|n| if n == "%" { Ok(Vec::new()) } else { unescape(n) });
                let name = name.ok_or_else(|| bad("no host name".into()))?.map_err(bad)?;
                let mut h = Host { name, ..Host::default() };
                for (k, v) in fields(f) {
                    if k == "seen" {
                        h.seen = num(k, v).map_err(bad)?;
                    }
                }
                st.hosts.push(h);
            }
            "include" => {
                let path = unescape(f.next().unwrap_or_default()).map_err(bad)?;
                let path =
                    std::path::PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(path));
                st.includes.insert(path, included(f).map_err(bad)?);
            }
            "dedupkey" => {
                let mut k = f.next().unwrap_or_default().split(',').map(|h| u64::from_str_radix(h, 16));
                match (k.next(), k.next()) {
                    (Some(Ok(a)), Some(Ok(b))) => st.dedup = crate::parse::Dedup::with_key((a, b)),
                    _ => return Err(bad("bad dedupkey".into())),
                }
                keyed = true;
            }
            // Hashes without their key (an older version's) match nothing.
            "dedup" if !keyed => {}
            "dedup" => {
                for h in f.next().unwrap_or_default().split(',').filter(|h| !h.is_empty()) {
                    let h = u64::from_str_radix(h, 16).map_err(|_| bad(format!("bad hash {h:?}")))?;
                    st.dedup.seen(h);
                }
            }
            "end" => {
                let want: usize = f.next().and_then(|s| s.parse().ok()).ok_or_else(|| bad("bad end marker".into()))?;
                if want != count {
                    return Err(bad(format!("end marker says {want} records, found {count}")));
                }
                // Either no checksum (an older file) or one that `verify`
                // found on the last line and matching.
                match f.next() {
                    None => {}
                    Some(s) if s.starts_with("fnv=") && summed && f.next().is_none() => {}
                    Some(_) => return Err(bad("bad end marker".into())),
                }
                ended = true;
            }
            // A kind from a later version.
            _ => {}
        }
    }
    if !ended {
        return Err(Corrupt::Truncated);
    }
    // A file written before the set was recorded has no `published=1`:
    // the set is unknown, not empty.
    if st.meta.published {
        st.published = Some(published);
    }
    Ok(st)
}

pub(super) fn fields<'a>(f: impl Iterator<Item = &'a str>) -> impl Iterator<Item = (&'a str, &'a str)> {
    f.filter_map(|kv| kv.split_once('='))
}

pub(super) fn num<T: std::str::FromStr>(k: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{k}={v:?} is not a number"))
}

pub(super) fn opt_num(k: &str, v: &str) -> Result<Option<i64>, String> {
    if v == "-" {
        Ok(None)
    } else {
        num(k, v).map(Some)
    }
}

fn cursor<'a>(f: impl Iterator<Item = &'a str>) -> Result<Cursor, String> {
    let mut c = Cursor { path: PathBuf::new(), file: FileId::default(), offset: 0, fingerprint: 0, done: false };
    for (k, v) in fields(f) {
        match k {
            "path" => {
                c.path = PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(unescape(v)?))
            }
            "dev" => c.file.dev = num(k, v)?,
            "ino" => c.file.ino = num(k, v)?,
            "offset" => c.offset = num(k, v)?,
            "size" => c.file.size = num(k, v)?,
            "fp" => c.fingerprint = u64::from_str_radix(v, 16).map_err(|_| format!("fp={v:?}"))?,
            "done" => c.done = v == "1",
            _ => {}
        }
    }
    if c.path.as_os_str().is_empty() {
        return Err("cursor without a path".into());
    }
    Ok(c)
}

fn meta<'a>(f: impl Iterator<Item = &'a str>) -> Result<Meta, String> {
    let mut m = Meta::default();
    for (k, v) in fields(f) {
        match k {
            "due" => m.due = opt_num(k, v)?,
            "policy" => m.policy = u64::from_str_radix(v, 16).map_err(|_| format!("policy={v:?}"))?,
            "out" => {
                let (a, b) = v.split_once(',').ok_or_else(|| format!("out={v:?}"))?;
                m.out = FileId { size: num(k, a)?, mtime: num(k, b)?, ..FileId::default() };
            }
            "stale" => m.stale = v == "1",
            "gen" => m.generation = num(k, v)?,
            "published" => m.published = v == "1",
            _ => {}
        }
    }
    Ok(m)
}

/// The cursors and the meta line of a complete state file, without
/// parsing its records: enough to tell that nothing changed. `None` when
/// the file is missing, damaged, or has no meta line.
pub fn read_head(path: &Path) -> Option<(Vec<Cursor>, Meta)> {
    let bytes = super::read_trusted(path).ok()??;
    // Complete: the last line is the end marker.
    let body = bytes.strip_suffix(b"\n")?;
    let last = body.rsplit(|&b| b == b'\n').next()?;
    if !last.starts_with(b"end\t") {
        return None;
    }
    let text = std::str::from_utf8(&bytes[..bytes.len().min(1 << 20)]).ok()?;
    let mut lines = text.split('\n');
    lines.next()?.strip_prefix(MAGIC)?.trim().parse::<u32>().ok().filter(|&v| v == VERSION)?;
    let mut cursors = Vec::new();
    for line in lines {
        let mut f = line.split('\t');
        match f.next()? {
            "cursor" => cursors.push(cursor(f).ok()?),
            "journal" => {}
            "meta" => return Some((cursors, meta(f).ok()?)),
            "" => {}
            k if k.starts_with('#') => {}
            _ => return None,
        }
    }
    None
}

fn included<'a>(f: impl Iterator<Item = &'a str>) -> Result<Included, String> {
    let mut i = Included::default();
    for (k, v) in fields(f) {
        match k {
            "serial" => i.serial = if v == "-" { None } else { Some(num(k, v)?) },
            "time" => i.time = num(k, v)?,
            "loaded" => i.loaded = num(k, v)?,
            "key" => i.key = (v != "-").then(|| v.to_string()),
            "nets" => {
                i.nets = v
                    .split(',')
                    .filter(|n| !n.is_empty())
                    .map(|n| n.parse::<Net>().map_err(|e| format!("nets entry {n:?}: {e}")))
                    .collect::<Result<_, _>>()?
            }
            _ => {}
        }
    }
    Ok(i)
}

/// A `manual` line; `last` is the reason of the one before, which
/// `same=1` stands for (and which an equal `reason=` shares).
fn manual<'a>(f: impl Iterator<Item = &'a str>, last: &mut Option<(String, Arc<str>)>) -> Result<Manual, String> {
    let mut m = Manual { since: 0, until: None, reason: "".into() };
    for (k, v) in fields(f) {
        match k {
            "since" => m.since = num(k, v)?,
            "until" => m.until = opt_num(k, v)?,
            "reason" => {
                m.reason = match last {
                    Some((raw, r)) if raw == v => r.clone(),
                    _ => {
                        let r: Arc<str> = String::from_utf8_lossy(&unescape(v)?).into();
                        *last = Some((v.to_string(), r.clone()));
                        r
                    }
                }
            }
            "same" if v == "1" => m.reason = last.as_ref().map_or_else(|| "".into(), |(_, r)| r.clone()),
            _ => {}
        }
    }
    Ok(m)
}

/// Renders `st` (records sorted by address, so the file diffs well).
///
/// Integers and addresses go through [`super::textout`], not `core::fmt`,
/// and nothing is allocated per record: a callgrind profile of a first
/// `sync` had this function at 29% of the run, mostly formatting. The
/// tests compare it with a `format!`-based reference.
pub fn render(st: &State) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + st.records.len() * 160);
    let _ = render_to(st, &mut out);
    out
}

/// What [`render_to`] buffers before it writes: the file is not held in
/// memory whole (about 250 bytes a record).
const CHUNK: usize = 64 * 1024;

/// Bytes rendered so far go to the writer, summed for the trailer.
struct Chunks<'w> {
    out: &'w mut dyn std::io::Write,
    sum: u64,
}

impl Chunks<'_> {
    fn flush(&mut self, s: &mut Vec<u8>) -> std::io::Result<()> {
        self.sum = crate::fnv1a_from(self.sum, s);
        self.out.write_all(s)?;
        s.clear();
        Ok(())
    }

    fn maybe(&mut self, s: &mut Vec<u8>) -> std::io::Result<()> {
        if s.len() >= CHUNK {
            self.flush(s)?;
        }
        Ok(())
    }
}

/// [`render`], written to `out` a chunk at a time.
pub fn render_to(st: &State, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    use super::textout::{push_hex16, push_i64, push_net};
    use std::io::Write;
    let mut w = Chunks { out, sum: crate::fnv1a(b"") };
    let mut s: Vec<u8> = Vec::with_capacity(CHUNK + 4096);
    let _ = writeln!(s, "{MAGIC} {VERSION}");
    s.extend_from_slice(b"# badguys state: written by badguys, read by badguys; see badguys(8).\n");
    for c in &st.cursors {
        s.extend_from_slice(b"cursor\tpath=");
        escape_into(&mut s, std::os::unix::ffi::OsStrExt::as_bytes(c.path.as_os_str()));
        let _ = writeln!(
            s,
            "\tdev={}\tino={}\toffset={}\tsize={}\tfp={:016x}\tdone={}",
            c.file.dev,
            c.file.ino,
            c.offset,
            c.file.size,
            c.fingerprint,
            u8::from(c.done)
        );
    }
    if let Some(c) = &st.journal {
        s.extend_from_slice(b"journal\tcursor=");
        escape_into(&mut s, c.as_bytes());
        s.push(b'\n');
    }
    let m = &st.meta;
    s.extend_from_slice(b"meta\tdue=");
    opt_into(&mut s, m.due);
    let _ = writeln!(
        s,
        "\tpolicy={:016x}\tout={},{}\tstale={}\tgen={}\tpublished={}",
        m.policy,
        m.out.size,
        m.out.mtime,
        u8::from(m.stale),
        m.generation,
        u8::from(st.published.is_some())
    );
    // IPv4 first, then IPv6, each by value (as `addr::ip_order`), sorted
    // apart on plain integer keys; the keys are distinct, so an unstable
    // sort gives the one order.
    let mut v4: Vec<(u32, &Record)> = Vec::with_capacity(st.records.len());
    let mut v6: Vec<(u128, &Record)> = Vec::new();
    for (ip, r) in &st.records {
        match ip {
            IpAddr::V4(a) => v4.push((u32::from(*a), r)),
            IpAddr::V6(a) => v6.push((u128::from(*a), r)),
        }
    }
    v4.sort_unstable_by_key(|e| e.0);
    v6.sort_unstable_by_key(|e| e.0);
    let recs = v4
        .into_iter()
        .map(|(a, r)| (IpAddr::from(std::net::Ipv4Addr::from(a)), r))
        .chain(v6.into_iter().map(|(a, r)| (IpAddr::from(std::net::Ipv6Addr::from(a)), r)));
    for (ip, r) in recs {
        super::record_line::render(&mut s, ip, r);
        w.maybe(&mut s)?;
    }
    // Manual bans taken in from the list file share one reason: written
    // once, then `same=1` (a million of them made half the file).
    let mut last: Option<&str> = None;
    for (net, m) in &st.manual {
        s.extend_from_slice(b"manual\t");
        push_net(&mut s, *net);
        s.extend_from_slice(b"\tsince=");
        push_i64(&mut s, m.since);
        s.extend_from_slice(b"\tuntil=");
        opt_into(&mut s, m.until);
        if last == Some(&*m.reason) {
            s.extend_from_slice(b"\tsame=1");
        } else {
            s.extend_from_slice(b"\treason=");
            escape_into(&mut s, m.reason.as_bytes());
            last = Some(&m.reason);
        }
        s.push(b'\n');
        w.maybe(&mut s)?;
    }
    // Not counted in the end marker: a version that does not know the
    // kind skips these lines, and the checksum covers them anyway.
    for net in st.published.iter().flatten() {
        s.extend_from_slice(b"published\t");
        push_net(&mut s, *net);
        s.push(b'\n');
        w.maybe(&mut s)?;
    }
    for h in &st.hosts {
        s.extend_from_slice(b"host\t");
        if h.name.is_empty() {
            s.push(b'%');
        } else {
            escape_into(&mut s, &h.name);
        }
        let _ = writeln!(s, "\tseen={}", h.seen);
        w.maybe(&mut s)?;
    }
    for (path, i) in &st.includes {
        s.extend_from_slice(b"include\t");
        escape_into(&mut s, std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()));
        s.extend_from_slice(b"\tserial=");
        match i.serial {
            Some(n) => {
                let _ = write!(s, "{n}");
            }
            None => s.push(b'-'),
        }
        let _ = write!(s, "\ttime={}\tloaded={}\tkey={}\tnets=", i.time, i.loaded, i.key.as_deref().unwrap_or("-"));
        for (n, net) in i.nets.iter().enumerate() {
            let _ = write!(s, "{}{net}", if n > 0 { "," } else { "" });
        }
        s.push(b'\n');
    }
    if !st.dedup.is_empty() {
        let (a, b) = st.dedup.secret();
        s.extend_from_slice(b"dedupkey\t");
        push_hex16(&mut s, a);
        s.push(b',');
        push_hex16(&mut s, b);
        s.push(b'\n');
        s.extend_from_slice(b"dedup\t");
        for (n, h) in st.dedup.kept().enumerate() {
            if n > 0 {
                s.push(b',');
            }
            push_hex16(&mut s, h);
        }
        s.push(b'\n');
    }
    w.flush(&mut s)?;
    let _ = writeln!(s, "end\t{}\tfnv={:016x}", st.cursors.len() + st.records.len() + st.manual.len(), w.sum);
    w.out.write_all(&s)
}

/// Appends a time or `-` for none.
pub(super) fn opt_into(s: &mut Vec<u8>, t: Option<i64>) {
    match t {
        Some(t) => super::textout::push_i64(s, t),
        None => s.push(b'-'),
    }
}

/// Percent-encodes everything but printable ASCII other than `%,= `.
pub(super) fn escape_into(s: &mut Vec<u8>, b: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let plain = |c: u8| c.is_ascii_graphic() && !matches!(c, b'%' | b',' | b'=');
    if b.iter().all(|&c| plain(c)) {
        s.extend_from_slice(b);
        return;
    }
    for &c in b {
        if plain(c) {
            s.push(c);
        } else {
            s.extend_from_slice(&[b'%', HEX[usize::from(c >> 4)], HEX[usize::from(c & 0xf)]]);
        }
    }
}

pub(super) fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or_else(|| format!("bad escape in {s:?}"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad escape in {s:?}"))?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "statefile_tests.rs"]
mod tests;
