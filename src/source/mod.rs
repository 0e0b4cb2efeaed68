//! Where lines come from. Owns finding a log's rotated siblings (newsyslog's
//! `authlog.0.gz`, logrotate's `auth.log.1`, `auth.log.2.gz`, dateext's
//! `auth.log-20241001.gz`), opening each as plain text or gzip (told by its
//! first bytes, not its name), and handing out buffers of complete lines read
//! into one reused allocation. A line longer than [`crate::parse::MAX_LINE`]
//! that does not fit the buffer is dropped and counted, never buffered whole.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::parse::MAX_LINE;
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
    pub gzip: bool,
    /// Lines dropped because they did not fit the buffer.
    pub overlong: u64,
    /// A gzip stream that ended early or is corrupt: what came before it was
    /// used, the rest is lost.
    pub damaged: Option<String>,
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

    /// Opens `path` (a regular file, or `-` for standard input) and calls
    /// `chunk` with buffers of complete lines, in order; the last line of the
    /// file is handed out even without its newline. `overlong` is called for
    /// each line dropped for its length.
    pub fn read_path(
        &mut self,
        path: &Path,
        chunk: &mut dyn FnMut(&[u8]),
        overlong: &mut dyn FnMut(),
    ) -> Result<FileStats, Error> {
        let input = |err| Error::Input { path: path.to_path_buf(), err };
        if is_stdin(path) {
            return self.read_any(&mut io::stdin().lock(), chunk, overlong).map_err(input);
        }
        let file = File::open(path).map_err(input)?;
        let meta = file.metadata().map_err(input)?;
        if !meta.is_file() {
            let what = if meta.is_dir() { "is a directory" } else { "is not a regular file" };
            return Err(Error::NotRegular { path: path.to_path_buf(), what });
        }
        self.read_any(&mut &file, chunk, overlong).map_err(input)
    }

    /// Plain text or gzip, told by the magic number.
    fn read_any(
        &mut self,
        r: &mut dyn Read,
        chunk: &mut dyn FnMut(&[u8]),
        overlong: &mut dyn FnMut(),
    ) -> io::Result<FileStats> {
        let mut head = [0u8; 2];
        let n = read_full(r, &mut head)?;
        let mut head_then_rest = io::Cursor::new(&head[..n]).chain(r);
        if n == 2 && head == [0x1f, 0x8b] {
            let mut gz = flate2::read::MultiGzDecoder::new(head_then_rest);
            let mut stats = FileStats { gzip: true, ..FileStats::default() };
            if let Err(e) = self.lines(&mut gz, chunk, overlong, &mut stats) {
                // A truncated or corrupt archive: keep what was decoded.
                if matches!(
                    e.kind(),
                    io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
                ) {
                    stats.damaged = Some(e.to_string());
                } else {
                    return Err(e);
                }
            }
            Ok(stats)
        } else {
            let mut stats = FileStats::default();
            self.lines(&mut head_then_rest, chunk, overlong, &mut stats)?;
            Ok(stats)
        }
    }

    fn lines(
        &mut self,
        r: &mut dyn Read,
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
        let mut skipping = false;
        loop {
            let n = match r.read(&mut buf[a..a + BUF]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Every complete line before the error was handed out.
                Err(e) => return Err(e),
            };
            if n == 0 {
                if skipping {
                    stats.overlong += 1;
                    overlong();
                } else if pend > 0 {
                    stats.bytes += pend as u64;
                    chunk(&buf[a - pend..a]);
                }
                return Ok(());
            }
            let end = a + n;
            let mut start = a - pend;
            if skipping {
                let Some(i) = memchr::memchr(b'\n', &buf[a..end]) else { continue };
                skipping = false;
                stats.overlong += 1;
                overlong();
                start = a + i + 1;
            }
            let rest = match memchr::memrchr(b'\n', &buf[start..end]) {
                Some(i) => {
                    let nl = start + i;
                    stats.bytes += (nl + 1 - start) as u64;
                    chunk(&buf[start..=nl]);
                    nl + 1
                }
                None => start,
            };
            pend = end - rest;
            if pend > MAX_LINE {
                skipping = true;
                pend = 0;
            } else {
                buf.copy_within(rest..end, a - pend);
            }
        }
    }
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
            .read_any(
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
        data.extend(std::iter::repeat(b'x').take(3 * BUF));
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
        let stats =
            r.read_any(&mut &gz[..gz.len() / 2], &mut |c| n += c.split(|&b| b == b'\n').count(), &mut || {}).unwrap();
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
