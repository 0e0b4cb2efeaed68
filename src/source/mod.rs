//! Where lines come from. Owns reading a log file (found and opened by
//! `logfile`) as plain text or gzip (told by its first bytes, not its
//! name), and handing out buffers of complete lines read
//! into one reused allocation. A line longer than [`crate::parse::MAX_LINE`]
//! that does not fit the buffer is dropped and counted, never buffered whole;
//! reading picks up again at its newline, or after a run of NUL bytes (a
//! crash's zero fill: syslog never writes a NUL, so text after one starts a
//! line). [`cursors`] tells which cursor belongs to which file.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

pub mod cursors;
pub mod journal;
mod logfile;

pub use cursors::{Cursor, FileId, Tracker};
pub use logfile::{check_log, default_log, delay_open, files, is_stdin, open_log, rotated, Skipped};

use crate::parse::MAX_LINE;
use crate::Error;

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
    /// Indices in `known` of the cursors that described this file's text:
    /// its new cursor replaces them.
    pub matched: Vec<usize>,
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
    /// read before (see `cursors::start`): a file whose text a cursor
    /// describes is read from where that cursor got to, a gzip file read
    /// to its end (or its damage) is skipped, any other file is read from
    /// its start. A damaged gzip file is read as far as it goes, whatever
    /// the cursor, and reported in the stats, never as an error.
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
        let (mut file, meta) = open_log(path)?;
        // A cursor keeps no time: a log is known by inode and content.
        let id = FileId { mtime: 0, ..FileId::from_meta(&meta) };
        let mut head = vec![0u8; FP_LEN];
        let n = read_full(&mut file, &mut head).map_err(input)?;
        head.truncate(n);
        let gzip = head.starts_with(&GZIP_MAGIC);
        let cursor =
            |fingerprint, offset, done| Cursor { path: path.to_path_buf(), file: id, offset, fingerprint, done };

        // A compressed file never changes: same inode and size, done.
        if gzip {
            if let Some(i) = known.iter().position(|c| c.done && c.file.same_inode_and_size(&id)) {
                let c = &known[i];
                let stats = FileStats { gzip, ..FileStats::default() };
                return Ok(Progress {
                    cursor: cursor(c.fingerprint, c.offset, true),
                    stats,
                    from: c.offset,
                    matched: vec![i],
                });
            }
            let mut gz = flate2::read::MultiGzDecoder::new(io::Cursor::new(&head[..]).chain(&mut file));
            let mut first = vec![0u8; FP_LEN];
            // Damage in the first 4 KiB: what came before it is the head.
            let k = read_upto(&mut gz, &mut first);
            first.truncate(k);
            head = first;
        }
        let fp = fingerprint(&head);
        let cursors::Start { from, matched } = cursors::start(known, id, fp, gzip);
        file.seek(SeekFrom::Start(0)).map_err(input)?;
        if gzip {
            let mut gz = flate2::read::MultiGzDecoder::new(&mut file);
            // Decompress past what was read before (less if it is shorter).
            // Damage before that point: nothing of this file is new.
            let (skipped, damaged) = self.skip(&mut gz, from).map_err(input)?;
            let mut stats = match damaged {
                Some(why) => FileStats { damaged: Some(why), ..FileStats::default() },
                None => self.decode(&mut gz, false, true, chunk, overlong).map_err(input)?,
            };
            stats.gzip = true;
            // A compressed file is read once: to its end, or to its damage.
            let offset = from.max(skipped + stats.consumed);
            return Ok(Progress { cursor: cursor(fp, offset, true), stats, from: skipped, matched });
        }
        // A copy still shorter than the cursor: nothing to read yet.
        let start = from.min(id.size);
        file.seek(SeekFrom::Start(start)).map_err(input)?;
        let stats = self.decode(&mut file, false, !live, chunk, overlong).map_err(input)?;
        Ok(Progress { cursor: cursor(fp, from.max(start + stats.consumed), false), stats, from: start, matched })
    }

    /// Reads and drops the first `n` bytes of `r`: how many there were,
    /// and the damage that came first, if any.
    fn skip(&mut self, r: &mut dyn Read, n: u64) -> io::Result<(u64, Option<String>)> {
        let buf = &mut self.buf[self.area..self.area + BUF];
        let mut done = 0u64;
        while done < n {
            let want = (n - done).min(BUF as u64) as usize;
            match r.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(k) => done += k as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_damage(&e) => return Ok((done, Some(e.to_string()))),
                Err(e) => return Err(e),
            }
        }
        Ok((done, None))
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
        // Bytes of the overlong line being skipped, when skipping, and
        // whether they end in a NUL.
        let mut skipping: Option<(u64, bool)> = None;
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
                } else if let Some((skipped, _)) = skipping {
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
            if let Some((skipped, nul)) = skipping {
                // The dropped line ends at its newline, or where a zero
                // fill in it ends: text after a NUL starts a line.
                let nl = memchr::memchr(b'\n', &buf[a..end]).map(|i| a + i);
                let upto = nl.unwrap_or(end);
                let after_fill = memchr::memrchr(0, &buf[a..upto]).map(|z| a + z + 1).or(nul.then_some(a));
                let resume = match after_fill {
                    Some(t) if t < upto => t,
                    _ => match nl {
                        Some(nl) => nl + 1,
                        None => {
                            skipping = Some((skipped + n as u64, buf[end - 1] == 0));
                            continue;
                        }
                    },
                };
                skipping = None;
                stats.overlong += 1;
                stats.consumed += skipped + (resume - a) as u64;
                overlong();
                start = resume;
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
            let mut rest = rest;
            if end - rest > MAX_LINE {
                // Too long to carry: dropped, but for the text after a
                // zero fill, which starts a line of its own.
                match memchr::memrchr(0, &buf[rest..end]) {
                    Some(z) if rest + z + 1 < end && end - (rest + z + 1) <= MAX_LINE => {
                        stats.overlong += 1;
                        stats.consumed += (z + 1) as u64;
                        overlong();
                        rest += z + 1;
                    }
                    _ => {
                        skipping = Some(((end - rest) as u64, buf[end - 1] == 0));
                        rest = end;
                    }
                }
            }
            pend = end - rest;
            buf.copy_within(rest..end, a - pend);
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

/// Reads into `buf` until it is full, the end, or any error: how much.
fn read_upto(r: &mut dyn Read, buf: &mut [u8]) -> usize {
    read_some(r, buf).0
}

/// Reads into `buf` until it is full or the end; an error is an error.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    match read_some(r, buf) {
        (_, Some(e)) => Err(e),
        (n, None) => Ok(n),
    }
}

/// Reads into `buf` until it is full, the end, or an error (other than an
/// interruption): how much came, and the error that stopped it.
fn read_some(r: &mut dyn Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
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

    /// A reader that hands out at most `step` bytes per read, as a log
    /// being written does.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn trickle(data: &[u8], step: usize) -> (Vec<Vec<u8>>, u64) {
        let mut r = Reader::new();
        let (mut lines, mut over) = (Vec::new(), 0);
        let stats = r
            .read_stream(
                &mut Trickle(data, step),
                &mut |c| lines.extend(c.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec)),
                &mut || over += 1,
            )
            .unwrap();
        assert_eq!(stats.consumed, data.len() as u64, "every byte is consumed once");
        (lines, over)
    }

    #[test]
    fn a_zero_fill_longer_than_a_line_keeps_the_line_after_it() {
        let line = b"Oct  1 14:42:51 gw sshd[1]: Invalid user x from 203.0.113.5 port 22\n".to_vec();
        for (fill, step) in [(100 << 10, 4096), (3 * BUF, BUF), (3 * BUF, 1000), (MAX_LINE + 1, 7)] {
            let mut data = b"a\n".to_vec();
            data.extend(std::iter::repeat_n(0u8, fill));
            data.extend_from_slice(&line);
            data.extend_from_slice(b"b\n");
            // Lines handed out may still start with a short zero fill: the
            // scanner ends a line at a NUL too.
            let (lines, over) = trickle(&data, step);
            let lines: Vec<&[u8]> = lines.iter().flat_map(|l| l.split(|&b| b == 0)).filter(|l| !l.is_empty()).collect();
            assert!(over <= 1, "fill {fill}, reads of {step}: {over} overlong");
            assert!(
                lines == [&b"a\n"[..], &line, b"b\n"],
                "fill {fill}, reads of {step}: {:?}",
                lines.iter().map(|l| l.escape_ascii().to_string()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn a_long_line_is_dropped_to_its_newline_whatever_its_bytes() {
        for byte in [b'x', 0xff, b'\r'] {
            for step in [1000, BUF] {
                let mut data = b"a\n".to_vec();
                data.extend(std::iter::repeat_n(byte, 2 * BUF));
                data.extend_from_slice(b" Invalid user x from 203.0.113.5 port 22\nb\n");
                let (lines, over) = trickle(&data, step);
                assert_eq!(over, 1);
                assert!(
                    lines == [b"a\n".to_vec(), b"b\n".to_vec()],
                    "byte {byte}, reads of {step}: {} lines",
                    lines.len()
                );
            }
        }
    }

    #[test]
    fn a_damaged_gzip_file_is_read_to_its_damage_whatever_the_cursor() {
        let d = tempfile::tempdir().unwrap();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for i in 0..20000 {
            writeln!(enc, "line {i}").unwrap();
        }
        let gz = enc.finish().unwrap();
        let p = d.path().join("auth.log.2.gz");
        std::fs::write(&p, &gz[..gz.len() / 2]).unwrap();
        let mut r = Reader::new();
        let fp = fingerprint(b"line 0\n");
        let cursor = |offset| Cursor { path: p.clone(), file: FileId::default(), offset, fingerprint: fp, done: false };
        // Before, within and past what the damaged file holds.
        for offset in [0, 7, 1000, 10_000_000] {
            let mut n = 0;
            let got = r.read_file(&p, &[cursor(offset)], false, &mut |c| n += c.len() as u64, &mut || {}).unwrap();
            assert!(got.stats.damaged.is_some() && got.cursor.done, "offset {offset}: {got:?}");
            assert!(got.cursor.offset >= offset && got.cursor.offset == offset.max(got.from + n), "{got:?}");
            assert_eq!(n == 0, offset == 10_000_000, "offset {offset}: {n} bytes");
            // Read once: the same file again is done.
            let again =
                r.read_file(&p, std::slice::from_ref(&got.cursor), false, &mut |_| panic!("read twice"), &mut || {});
            assert_eq!(again.unwrap().cursor, got.cursor);
        }
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
}
