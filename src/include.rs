//! Included lists: a blocklist published by a fleet's collector (`badguys
//! export`, signed with `signify -S -e`) or a public one fetched over HTTPS
//! (Spamhaus DROP, FireHOL netsets, blocklist.de), plain or gzip. Owns
//! reading such a file, checking its signature against one or more signify
//! keys (key rollover: the key number picks the key), its serial (replay)
//! and age, and turning its lines into networks, each through
//! [`crate::addr::check_width`], capped in number.
//!
//! Not here: fetching (ftp(1), curl: `contrib/fleet/`), keeping the last
//! good copy and the last accepted serial (the state), and carving the
//! allowlist, bogons and never-listed ranges out of the entries: the caller
//! does that exactly as for every other source, so an included list can
//! never list what a local list could not.

mod signify;

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::addr::{check_width, Net, NetError};

pub use signify::{FormatError, PublicKey};

/// Largest file read, after gzip: a list of a million networks is ~20 MB.
pub const MAX_BYTES: u64 = 64 << 20;

/// How a list is checked.
#[derive(Clone, Debug)]
pub struct IncludeOpts {
    /// Keys accepted for the embedded signature (several for rollover).
    pub keys: Vec<PublicKey>,
    /// Accept a file without a signature (public lists over HTTPS).
    pub allow_unsigned: bool,
    /// Accept networks wider than /8 (IPv4) or /32 (IPv6).
    pub allow_wide: bool,
    /// Most entries accepted; a longer list is refused whole.
    pub max_entries: usize,
    /// The serial of the last list accepted from this include: a lower one
    /// is a replay.
    pub last_serial: Option<u64>,
    /// Seconds after its `generated=` time (or, without a header, its
    /// modification time) past which a list is stale.
    pub max_age: Option<i64>,
    /// The current time, seconds since the epoch.
    pub now: i64,
}

impl Default for IncludeOpts {
    fn default() -> Self {
        IncludeOpts {
            keys: Vec::new(),
            allow_unsigned: false,
            allow_wide: false,
            max_entries: 100_000,
            last_serial: None,
            max_age: None,
            now: 0,
        }
    }
}

/// `# badguys serial=UNIX_TIME generated=RFC3339 hosts=N`, the first line of
/// an exported list, inside the signed content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub serial: u64,
    /// Seconds since the epoch.
    pub generated: i64,
    /// How many hosts reported into the list.
    pub hosts: u32,
}

/// A list that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncludedList {
    pub path: PathBuf,
    /// The badguys header, when the list has one.
    pub header: Option<Header>,
    /// The key number that verified it (hex), or None when unsigned.
    pub signed_by: Option<String>,
    /// The networks, in file order, duplicates removed.
    pub nets: Vec<Net>,
    /// Lines that are not a network, or too wide: counted, the first few
    /// kept as `line: why` for the summary.
    pub skipped: u64,
    pub skipped_samples: Vec<String>,
    /// Seconds since the epoch the list's age is counted from.
    pub time: i64,
}

/// Why a list was not accepted; the caller keeps the last good copy.
#[derive(Debug, thiserror::Error)]
pub enum IncludeError {
    #[error("{}: missing (the pull job has not fetched it yet?)", path.display())]
    Missing { path: PathBuf },
    #[error("{}: {err}", path.display())]
    Read { path: PathBuf, err: std::io::Error },
    #[error("{}: larger than {MAX_BYTES} bytes", path.display())]
    TooLarge { path: PathBuf },
    #[error("{}: not signed (give --include-unsigned for a public list fetched over HTTPS)", path.display())]
    Unsigned { path: PathBuf },
    #[error("{}: signed, but no --include-key to check it with", path.display())]
    NoKey { path: PathBuf },
    #[error("{}: signature format: {err}", path.display())]
    BadSignature { path: PathBuf, err: FormatError },
    #[error("{}: signed with key {keynum}, which is none of the --include-key keys", path.display())]
    UnknownKey { path: PathBuf, keynum: String },
    #[error("{}: tampered: the signature does not match the content (key {keynum})", path.display())]
    Tampered { path: PathBuf, keynum: String },
    #[error("{}: serial {serial} is older than the last accepted {last}: a replayed list", path.display())]
    Replay { path: PathBuf, serial: u64, last: u64 },
    #[error("{}: stale: {age} s old, more than the {max_age} s allowed (is the pull job or the collector down?)", list.path.display())]
    Stale { list: Box<IncludedList>, age: i64, max_age: i64 },
    #[error("{}: more than {max} entries", path.display())]
    TooMany { path: PathBuf, max: usize },
    #[error("{}: line 1: bad badguys header: {line}", path.display())]
    BadHeader { path: PathBuf, line: String },
}

/// Loads included lists.
pub struct Include;

impl Include {
    /// Reads, verifies and parses the list at `path`.
    pub fn load(path: &Path, opts: &IncludeOpts) -> Result<IncludedList, IncludeError> {
        let (bytes, mtime) = read(path)?;
        parse(path, &bytes, mtime, opts)
    }
}

/// Reads a public key file (`signify -G -p`).
pub fn load_key(path: &Path) -> Result<PublicKey, IncludeError> {
    let (b, _) = read(path)?;
    PublicKey::parse(&b).map_err(|err| IncludeError::BadSignature { path: path.to_owned(), err })
}

fn read(path: &Path) -> Result<(Vec<u8>, i64), IncludeError> {
    let io = |err: std::io::Error| match err.kind() {
        std::io::ErrorKind::NotFound => IncludeError::Missing { path: path.to_owned() },
        _ => IncludeError::Read { path: path.to_owned(), err },
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let mtime = f
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    let mut raw = Vec::new();
    f.take(MAX_BYTES + 1).read_to_end(&mut raw).map_err(io)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..]).take(MAX_BYTES + 1).read_to_end(&mut out).map_err(io)?;
        raw = out;
    }
    if raw.len() as u64 > MAX_BYTES {
        return Err(IncludeError::TooLarge { path: path.to_owned() });
    }
    Ok((raw, mtime))
}

/// Checks and parses the content of a list (the file's bytes, after gzip).
pub fn parse(path: &Path, bytes: &[u8], mtime: i64, opts: &IncludeOpts) -> Result<IncludedList, IncludeError> {
    let p = || path.to_owned();
    let (body, signed_by) = if signify::looks_signed(bytes) {
        let s = signify::Signed::parse(bytes).map_err(|err| IncludeError::BadSignature { path: p(), err })?;
        let keynum = signify::hex(&s.keynum);
        if opts.keys.is_empty() {
            return Err(IncludeError::NoKey { path: p() });
        }
        let Some(key) = opts.keys.iter().find(|k| k.keynum == s.keynum) else {
            return Err(IncludeError::UnknownKey { path: p(), keynum });
        };
        if !key.verify(&s) {
            return Err(IncludeError::Tampered { path: p(), keynum });
        }
        (s.message, Some(keynum))
    } else if opts.allow_unsigned {
        (bytes, None)
    } else {
        return Err(IncludeError::Unsigned { path: p() });
    };
    let header = header(body).map_err(|line| IncludeError::BadHeader { path: p(), line })?;
    if let (Some(h), Some(last)) = (header, opts.last_serial) {
        if h.serial < last {
            return Err(IncludeError::Replay { path: p(), serial: h.serial, last });
        }
    }
    let mut list = IncludedList {
        path: p(),
        header,
        signed_by,
        nets: Vec::new(),
        skipped: 0,
        skipped_samples: Vec::new(),
        time: header.map_or(mtime, |h| h.generated),
    };
    let mut seen = std::collections::HashSet::new();
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let Some(entry) = entry(line) else { continue };
        let why = match std::str::from_utf8(entry).map_err(|_| NetError::Syntax).and_then(|s| s.parse::<Net>()) {
            Ok(net) => match check_width(net, opts.allow_wide) {
                Ok(net) => {
                    if seen.insert(net) {
                        if list.nets.len() >= opts.max_entries {
                            return Err(IncludeError::TooMany { path: p(), max: opts.max_entries });
                        }
                        list.nets.push(net);
                    }
                    continue;
                }
                Err(e) => e,
            },
            Err(e) => e,
        };
        list.skipped += 1;
        if list.skipped_samples.len() < 5 {
            let shown: String = entry.iter().take(60).map(|&b| b.escape_ascii().to_string()).collect();
            list.skipped_samples.push(format!("line {}: {shown}: {why}", i + 1));
        }
    }
    if let Some(max_age) = opts.max_age {
        let age = opts.now - list.time;
        if age > max_age {
            return Err(IncludeError::Stale { list: Box::new(list), age, max_age });
        }
    }
    Ok(list)
}

/// The network on a line: the first word, before any `;` or `#` comment
/// (Spamhaus `CIDR ; SBL…`, FireHOL `#` headers, blocklist.de one address a
/// line). None for blank and comment lines.
fn entry(line: &[u8]) -> Option<&[u8]> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let end = line.iter().position(|&b| b == b';' || b == b'#').unwrap_or(line.len());
    let line = &line[..end];
    let start = line.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = &line[start..];
    let stop = rest.iter().position(u8::is_ascii_whitespace).unwrap_or(rest.len());
    Some(&rest[..stop])
}

/// The badguys header on the first line, if that line starts `# badguys `.
fn header(body: &[u8]) -> Result<Option<Header>, String> {
    let first = body.split(|&b| b == b'\n').next().unwrap_or(b"");
    let Some(rest) = first.strip_prefix(b"# badguys ") else { return Ok(None) };
    let shown = || String::from_utf8_lossy(first).into_owned();
    let text = std::str::from_utf8(rest).map_err(|_| shown())?;
    let (mut serial, mut generated, mut hosts) = (None, None, None);
    for kv in text.split_ascii_whitespace() {
        match kv.split_once('=') {
            Some(("serial", v)) => serial = v.parse::<u64>().ok(),
            Some(("generated", v)) => generated = chrono::DateTime::parse_from_rfc3339(v).ok().map(|t| t.timestamp()),
            Some(("hosts", v)) => hosts = v.parse::<u32>().ok(),
            // Later versions may add fields.
            _ => {}
        }
    }
    match (serial, generated, hosts) {
        (Some(serial), Some(generated), Some(hosts)) => Ok(Some(Header { serial, generated, hosts })),
        _ => Err(shown()),
    }
}

#[cfg(test)]
mod tests;
