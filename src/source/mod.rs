//! Where lines come from. Owns finding a log's rotated siblings (newsyslog's
//! `authlog.0.gz`, logrotate's `auth.log.1`, `auth.log.2.gz`, dateext's
//! `auth.log-20241001.gz`), opening each as plain text or gzip (told by its
//! first bytes, not its name), and handing out buffers of complete lines read
//! into one reused allocation. A line longer than [`crate::parse::MAX_LINE`]
//! that does not fit the buffer is dropped and counted, never buffered whole.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub mod journal;

use crate::parse::MAX_LINE;
use crate::state::Cursor;
use crate::Error;

/// The default log: `/var/log/authlog` on OpenBSD, `/var/log/auth.log` elsewhere.
pub fn default_log() -> PathBuf {
    if cfg!(target_os = "openbsd") {
        PathBuf::from("/var/log/authlog")
    } else {
        PathBuf::from("/var/log/auth.log")
    }
}

/// `-` as a log path means standard input.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// A rotated sibling that was found but cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub why: &'static str,
}

/// The rotated siblings of `log`, oldest first, and those it cannot read.
pub fn rotated(log: &Path) -> (Vec<PathBuf>, Vec<Skipped>) {
    let (Some(dir), Some(base)) = (log.parent(), log.file_name().and_then(|b| b.to_str())) else {
        return (Vec::new(), Vec::new());
    };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (Vec::new(), Vec::new());
    };
    let mut found: Vec<(u8, u64, PathBuf)> = Vec::new();
    let mut skipped = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(suffix) = name.strip_prefix(base) else { continue };
        let (stem, compressed) = match suffix.rsplit_once('.') {
            Some((s, "gz")) => (s, None),
            Some((s, ext @ ("bz2" | "xz" | "zst" | "lz4" | "Z"))) => (s, Some(ext)),
            _ => (suffix, None),
        };
        let key = if let Some(n) = stem.strip_prefix('.').filter(|n| is_digits(n, 1..=6)) {
            // authlog.0.gz is newer than authlog.1.gz: sort descending.
            (1u8, u64::MAX - n.parse::<u64>().unwrap_or(0))
        } else if let Some(d) = stem.strip_prefix('-').filter(|d| is_digits(d, 8..=14)) {
            (0u8, d.parse::<u64>().unwrap_or(0))
        } else {
            continue;
        };
        let path = dir.join(name);
        if compressed.is_some() {
            skipped.push(Skipped { path, why: "compression other than gzip is not supported" });
            continue;
        }
        found.push((key.0, key.1, path));
    }
    found.sort();
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    (found.into_iter().map(|(_, _, p)| p).collect(), skipped)
}

fn is_digits(s: &str, len: std::ops::RangeInclusive<usize>) -> bool {
    len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// What reading one file found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FileStats {
    /// Bytes of (decompressed) text handed out.
    pub bytes: u64,
    /// Bytes consumed from where reading started: every complete line,
    /// those dropped for their length included. A cursor moves by this.
    pub consumed: u64,
    pub gzip: bool,
    /// Lines dropped because they did not fit the buffer.
    pub overlong: u64,
    /// A gzip stream that ended early or is corrupt: what came before it was
    /// used, the rest is lost.
    pub damaged: Option<String>,
}

/// Where reading one file started and got to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The file's cursor after reading.
    pub cursor: Cursor,
    pub stats: FileStats,
    /// The offset reading started at (0 for a new or truncated file).
    pub from: u64,
    /// Index in `known` of the cursor that matched this file, if one did.
    pub matched: Option<usize>,
}

/// Reads files into one reused buffer and hands out complete lines.
pub struct Reader {
    buf: Vec<u8>,
    /// Page-aligned offset in `buf` where reads go; the `MAX_LINE` bytes
    /// before it hold the carried partial line.
    area: usize,
}

/// Size of the read buffer: large enough that the prefilter runs over long
/// spans and syscalls are few, small enough that the kernel's copy and the
/// scan that follows stay in cache.
const BUF: usize = 256 << 10;

/// Bytes of a file's start that identify it.
const FP_LEN: usize = 4096;

impl Default for Reader {
    fn default() -> Reader {
        Reader::new()
    }
}

impl Reader {
    pub fn new() -> Reader {
        const PAGE: usize = 4096;
        let buf = vec![0; MAX_LINE + PAGE + BUF];
        let base = buf.as_ptr() as usize;
        let area = (base + MAX_LINE).next_multiple_of(PAGE) - base;
        Reader { buf, area }
    }

    /// Reads a whole stream (standard input), plain or gzip; the last line
    /// is handed out even without its newline.
    pub fn read_stream(
        &mut self,
        r: &mut dyn Read,
        chunk: &mut dyn FnMut(&[u8]),
        overlong: &mut dyn FnMut(),
    ) -> io::Result<FileStats> {
        let mut head = [0u8; 2];
        let n = read_full(r, &mut head)?;
        let gzip = n == 2 && head == GZIP_MAGIC;
        let mut r = io::Cursor::new(&head[..n]).chain(r);
        self.decode(&mut r, gzip, true, chunk, overlong)
    }

    /// Reads what is new in the log file `path`, given the cursors of files
    /// read before: a file whose first line matches a cursor is read from
    /// that cursor's offset (from 0 if it shrank below it), a gzip file read
    /// to its end is skipped, any other file is read from its start.
    ///
    /// `live` is the log being written to: its last line is held back until
    /// its newline arrives. A rotated file is complete, so its last line is
    /// handed out as it is.
    pub fn read_file(
        &mut self,
        path: &Path,
        known: &[Cursor],
        live: bool,
        chunk: &mut dyn FnMut(&[u8]),
        overlong: &mut dyn FnMut(),
    ) -> Result<Progress, Error> {
        let input = |err| Error::Input { path: path.to_path_buf(), err };
        let mut file = File::open(path).map_err(input)?;
        let meta = file.metadata().map_err(input)?;
        if !meta.is_file() {
            let what = if meta.is_dir() { "is a directory" } else { "is not a regular file" };
            return Err(Error::NotRegular { path: path.to_path_buf(), what });
        }
        let (dev, ino, size) = (meta.dev(), meta.ino(), meta.len());
        let mut head = vec![0u8; FP_LEN];
        let n = read_full(&mut file, &mut head).map_err(input)?;
        head.truncate(n);
        let gzip = head.starts_with(&GZIP_MAGIC);
        let cursor =
            |fingerprint, offset, done| Cursor { path: path.to_path_buf(), dev, ino, offset, fingerprint, size, done };

        // A compressed file never changes: same inode and size, done.
        if gzip {
            if let Some(i) = known.iter().position(|c| c.done && (c.dev, c.ino, c.size) == (dev, ino, size)) {
                let c = &known[i];
                let stats = FileStats { gzip, ..FileStats::default() };
                return Ok(Progress {
                    cursor: cursor(c.fingerprint, c.offset, true),
                    stats,
                    from: c.offset,
                    matched: Some(i),
                });
            }
            let mut gz = flate2::read::MultiGzDecoder::new(io::Cursor::new(&head[..]).chain(&mut file));
            let mut first = vec![0u8; FP_LEN];
            let k = read_full(&mut gz, &mut first).unwrap_or(0);
            first.truncate(k);
            head = first;
        }
        let fp = fingerprint(&head);
        let matched = if fp == 0 { None } else { known.iter().position(|c| c.fingerprint == fp) };
        let from = match matched.map(|i| &known[i]) {
            Some(c) if gzip && c.done => {
                let stats = FileStats { gzip, ..FileStats::default() };
                return Ok(Progress { cursor: cursor(fp, c.offset, true), stats, from: c.offset, matched });
            }
            // Shrunk below the cursor: truncated (copytruncate), read again.
            Some(c) if !gzip && c.offset > size => 0,
            Some(c) => c.offset,
            None => 0,
        };
        file.seek(SeekFrom::Start(0)).map_err(input)?;
        let (from, stats) = if gzip {
            let mut gz = flate2::read::MultiGzDecoder::new(&mut file);
            // Decompress past what was read before (less if it is shorter).
            let skipped = io::copy(&mut (&mut gz).take(from), &mut io::sink()).map_err(input)?;
            let mut st = self.decode(&mut gz, false, true, chunk, overlong).map_err(input)?;
            st.gzip = true;
            (skipped, st)
        } else {
            file.seek(SeekFrom::Start(from)).map_err(input)?;
            (from, self.decode(&mut file, false, !live, chunk, overlong).map_err(input)?)
        };
        // A compressed file is read once: to its end, or to its damage.
        let done = gzip;
        let offset = from + stats.consumed;
        Ok(Progress { cursor: cursor(fp, offset, done), stats, from, matched })
    }

    /// Reads `r` (decompressing when `gzip`); a damaged gzip stream is
    /// reported in the stats, not as an error.
    fn decode(
        &mut self,
        r: &mut dyn Read,
        gzip: bool,
        final_partial: bool,
        chunk: &mut dyn FnMut(&[u8]),
        overlong: &mut dyn FnMut(),
    ) -> io::Result<FileStats> {
        let mut stats = FileStats { gzip, ..FileStats::default() };
        let res = if gzip {
            self.lines(&mut flate2::read::MultiGzDecoder::new(r), final_partial, chunk, overlong, &mut stats)
        } else {
            self.lines(r, final_partial, chunk, overlong, &mut stats)
        };
        match res {
            Ok(()) => Ok(stats),
            Err(e) if is_damage(&e) => {
                stats.damaged = Some(e.to_string());
                Ok(stats)
            }
            Err(e) => Err(e),
        }
    }

    fn lines(
        &mut self,
        r: &mut dyn Read,
        final_partial: bool,
        chunk: &mut dyn FnMut(&[u8]),
        overlong: &mut dyn FnMut(),
        stats: &mut FileStats,
    ) -> io::Result<()> {
        // Reads always land at the page-aligned offset `a`; the unfinished
        // last line of a chunk is carried to just before it, so the kernel
        // copies into aligned memory (measured: unaligned reads made the
        // copy the largest cost of a sync).
        let a = self.area;
        let buf = &mut self.buf;
        let mut pend = 0;
        // Bytes of the overlong line being skipped, when skipping.
        let mut skipping: Option<u64> = None;
        loop {
            let n = match r.read(&mut buf[a..a + BUF]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Every complete line before the error was handed out.
                Err(e) => return Err(e),
            };
            if n == 0 {
                if !final_partial {
                    // A line still being written: read it again next time.
                } else if let Some(skipped) = skipping {
                    stats.overlong += 1;
                    stats.consumed += skipped;
                    overlong();
                } else if pend > 0 {
                    stats.bytes += pend as u64;
                    stats.consumed += pend as u64;
                    chunk(&buf[a - pend..a]);
                }
                return Ok(());
            }
            let end = a + n;
            let mut start = a - pend;
            if let Some(skipped) = skipping {
                let Some(i) = memchr::memchr(b'\n', &buf[a..end]) else {
                    skipping = Some(skipped + n as u64);
                    continue;
                };
                skipping = None;
                stats.overlong += 1;
                stats.consumed += skipped + i as u64 + 1;
                overlong();
                start = a + i + 1;
            }
            let rest = match memchr::memrchr(b'\n', &buf[start..end]) {
                Some(i) => {
                    let nl = start + i;
                    stats.bytes += (nl + 1 - start) as u64;
                    stats.consumed += (nl + 1 - start) as u64;
                    chunk(&buf[start..=nl]);
                    nl + 1
                }
                None => start,
            };
            pend = end - rest;
            if pend > MAX_LINE {
                skipping = Some(pend as u64);
                pend = 0;
            } else {
                buf.copy_within(rest..end, a - pend);
            }
        }
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Errors of a truncated or corrupt gzip stream.
fn is_damage(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof)
}

/// Identifies a file by its first line (or its first 4 KiB when that line
/// is longer); 0 when it has no complete first line yet.
fn fingerprint(head: &[u8]) -> u64 {
    let id = match memchr::memchr(b'\n', head) {
        Some(i) => &head[..=i],
        None if head.len() >= FP_LEN => head,
        None => return 0,
    };
    // FNV-1a; never 0 for a non-empty input in practice, forced otherwise.
    crate::fnv1a(id).max(1)
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn collect(data: &[u8]) -> (Vec<Vec<u8>>, u64) {
        let mut r = Reader::new();
        let mut lines = Vec::new();
        let mut over = 0;
        let stats = r
            .read_stream(
                &mut &data[..],
                &mut |c| lines.extend(c.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec)),
                &mut || over += 1,
            )
            .unwrap();
        assert_eq!(stats.overlong, over);
        (lines, over)
    }

    #[test]
    fn long_lines_are_dropped_and_counted() {
        let mut data = b"a\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 3 * BUF));
        data.extend_from_slice(b"\nb\nc");
        let (lines, over) = collect(&data);
        assert_eq!(over, 1);
        assert_eq!(lines, vec![b"a\n".to_vec(), b"b\n".to_vec(), b"c".to_vec()]);
    }

    #[test]
    fn gzip_by_content_and_truncation() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for i in 0..20000 {
            writeln!(enc, "line {i}").unwrap();
        }
        let gz = enc.finish().unwrap();
        let (lines, _) = collect(&gz);
        assert_eq!(lines.len(), 20000);
        let mut r = Reader::new();
        let mut n = 0;
        let stats = r
            .read_stream(&mut &gz[..gz.len() / 2], &mut |c| n += c.split(|&b| b == b'\n').count(), &mut || {})
            .unwrap();
        assert!(stats.damaged.is_some() && n > 0);
    }

    #[test]
    fn rotated_order() {
        let d = tempfile::tempdir().unwrap();
        for n in [
            "auth.log",
            "auth.log.1",
            "auth.log.2.gz",
            "auth.log.10.gz",
            "auth.log-20240101.gz",
            "auth.log.3.xz",
            "auth.logx",
            "auth.log.old",
        ] {
            std::fs::write(d.path().join(n), "").unwrap();
        }
        let (found, skipped) = rotated(&d.path().join("auth.log"));
        let names: Vec<_> = found.iter().map(|p| p.file_name().unwrap().to_str().unwrap().to_string()).collect();
        assert_eq!(names, ["auth.log-20240101.gz", "auth.log.10.gz", "auth.log.2.gz", "auth.log.1"]);
        assert_eq!(skipped.len(), 1);
    }
}
