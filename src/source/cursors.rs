//! Which cursor belongs to which file. A file is known by what it holds
//! (the fingerprint of its first line) and by its identity (device and
//! inode), never by the path it had at one moment: rotation renames,
//! copies and compresses files while a step lists a directory and opens
//! what it listed. Owns where reading a file starts, given the cursors of
//! the files read before, and which cursors a step keeps for the next.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{files, is_stdin, Progress};

/// Which file a path names, and how big and how new it is: the one
/// identity type for log files (cursors), the state file (did another
/// process write it?) and the blocklist file (did someone edit it?).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
    /// Size on disk (compressed size for gzip).
    pub size: u64,
    /// Modification time in nanoseconds since the epoch (0 where not kept).
    pub mtime: i64,
}

impl FileId {
    pub fn from_meta(m: &Metadata) -> FileId {
        FileId { dev: m.dev(), ino: m.ino(), size: m.size(), mtime: m.mtime_nsec() + m.mtime() * 1_000_000_000 }
    }

    /// The identity of what `path` names now (following symlinks), if anything.
    pub fn of(path: &Path) -> Option<FileId> {
        std::fs::metadata(path).ok().map(|m| FileId::from_meta(&m))
    }

    /// Size and modification time only: what tells an edit of a file that
    /// is replaced by rename on every write (the blocklist). A missing file
    /// is all zeros.
    pub fn stamp_of(path: &Path) -> FileId {
        FileId::of(path).map_or(FileId::default(), |f| FileId { dev: 0, ino: 0, ..f })
    }

    pub fn same_inode(&self, other: &FileId) -> bool {
        (self.dev, self.ino) == (other.dev, other.ino)
    }

    /// The same inode with the same size (a compressed file never changes).
    pub fn same_inode_and_size(&self, other: &FileId) -> bool {
        self.same_inode(other) && self.size == other.size
    }
}

/// Where reading a log file got to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// The path it was last seen at.
    pub path: PathBuf,
    /// Device, inode and size on disk when last read (no time: a cursor
    /// knows a file by inode and content, see [`start`]).
    pub file: FileId,
    /// Bytes of (decompressed) text consumed: always the end of a complete line.
    pub offset: u64,
    /// Hash of the file's first line: the same file after a rename, a copy
    /// or compression, and a different one after truncation.
    pub fingerprint: u64,
    /// A gzip file read to its end: it will not change.
    pub done: bool,
}

/// Where reading a file starts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Start {
    /// Offset in the (decompressed) text.
    pub from: u64,
    /// Every known cursor that described this file's text: the file's new
    /// cursor replaces them all.
    pub matched: Vec<usize>,
}

/// Where to read the file `file` (its size on disk included) with
/// first-line fingerprint `fp` (0: no complete first line yet).
///
/// Every cursor with the same fingerprint describes the same text, under
/// whatever name and inode it had (a rename, a copy, a compressed copy):
/// what the furthest of them reached was read. The one exception is the
/// same inode shrunk below its cursor: truncated (copytruncate) and
/// written again from its start, so read from 0. A different inode that is
/// shorter than the cursor is a copy still being made: nothing of it is
/// new until it grows past the cursor.
pub(crate) fn start(known: &[Cursor], file: FileId, fp: u64, gzip: bool) -> Start {
    if fp == 0 {
        return Start { from: 0, matched: Vec::new() };
    }
    let matched: Vec<usize> = (0..known.len()).filter(|&i| known[i].fingerprint == fp).collect();
    let truncated = !gzip && matched.iter().any(|&i| known[i].file.same_inode(&file) && known[i].offset > file.size);
    let from = if truncated { 0 } else { matched.iter().map(|&i| known[i].offset).max().unwrap_or(0) };
    Start { from, matched }
}

/// The cursors of one step: those it started from, and those of the files
/// it read.
#[derive(Debug, Default)]
pub struct Tracker {
    known: Vec<Cursor>,
    matched: Vec<bool>,
    read: Vec<Cursor>,
}

impl Tracker {
    pub fn new(known: Vec<Cursor>) -> Tracker {
        Tracker { matched: vec![false; known.len()], known, read: Vec::new() }
    }

    /// The cursors of the files read before this step.
    pub fn known(&self) -> &[Cursor] {
        &self.known
    }

    /// Takes in what reading one file found; true when it moved on
    /// (something was consumed, or the file is new or changed).
    pub fn note(&mut self, p: &Progress) -> bool {
        for &i in &p.matched {
            self.matched[i] = true;
        }
        let moved = p.stats.consumed > 0 || !p.matched.iter().any(|&i| self.known[i] == p.cursor);
        self.read.push(p.cursor.clone());
        moved
    }

    /// The cursors for the next step: those of the files read now, and of
    /// the files not read now that may be read later.
    ///
    /// A cursor no file matched stays while its path exists and no file
    /// read now was at that path (another `--log` set, a file that is back
    /// after a while). When the logs' files, listed again now, include one
    /// that this step did not read (it was renamed or compressed between
    /// the listing and the opening, or the step stopped early), every such
    /// cursor stays: it may well be that file's, and dropping it would read
    /// that file again from its start.
    pub fn finish(self, logs: &[PathBuf], rotated_too: bool) -> Vec<Cursor> {
        let Tracker { known, matched, mut read } = self;
        let ids: Vec<FileId> = read.iter().map(|c| c.file).collect();
        let unread = logs.iter().filter(|l| !is_stdin(l)).any(|log| {
            files(log, rotated_too).iter().any(|(p, _)| {
                std::fs::metadata(p)
                    .is_ok_and(|m| m.is_file() && !ids.iter().any(|id| id.same_inode(&FileId::from_meta(&m))))
            })
        });
        let mut kept = Vec::new();
        for (c, m) in known.into_iter().zip(matched) {
            if !m && (unread || (c.path.exists() && !read.iter().any(|n| n.path == c.path))) {
                kept.push(c);
            }
        }
        read.extend(kept);
        read
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Reader;
    use std::io::Write;
    use std::path::Path;

    fn id(dev: u64, ino: u64, size: u64) -> FileId {
        FileId { dev, ino, size, mtime: 0 }
    }

    fn cursor(dev: u64, ino: u64, offset: u64, fp: u64) -> Cursor {
        let file = FileId { dev, ino, size: offset, mtime: 0 };
        Cursor { path: PathBuf::from("x"), file, offset, fingerprint: fp, done: false }
    }

    #[test]
    fn same_text_is_read_from_the_furthest_cursor() {
        let known = [cursor(1, 10, 500, 7), cursor(1, 11, 900, 7), cursor(1, 12, 50, 8)];
        // A copy (another inode), shorter than the cursor: nothing new yet.
        assert_eq!(start(&known, id(1, 13, 300), 7, false), Start { from: 900, matched: vec![0, 1] });
        // The same inode shrunk: truncated and written again.
        assert_eq!(start(&known, id(1, 10, 300), 7, false).from, 0);
        assert_eq!(start(&known, id(1, 12, 10), 9, false), Start { from: 0, matched: vec![] });
        assert_eq!(start(&known, id(1, 12, 10), 0, false), Start { from: 0, matched: vec![] });
    }

    /// One step over `log`'s files as listed in `listing`, returning the
    /// lines read and the cursors kept.
    fn step(log: &Path, listing: Vec<(PathBuf, bool)>, known: Vec<Cursor>) -> (Vec<String>, Vec<Cursor>) {
        let mut r = Reader::new();
        let mut t = Tracker::new(known);
        let mut lines = Vec::new();
        for (path, live) in listing {
            let known = t.known().to_vec();
            let mut got = Vec::new();
            match r.read_file(&path, &known, live, &mut |c| got.extend_from_slice(c), &mut || {}) {
                Ok(p) => {
                    t.note(&p);
                }
                Err(crate::Error::Input { err, .. }) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("{e}"),
            }
            lines.extend(String::from_utf8(got).unwrap().lines().map(str::to_string));
        }
        (lines, t.finish(&[log.to_path_buf()], true))
    }

    fn append(p: &Path, s: &str) {
        std::fs::OpenOptions::new().create(true).append(true).open(p).unwrap().write_all(s.as_bytes()).unwrap();
    }

    /// A rotation between listing the siblings and opening them: the step
    /// reads `auth.log.1` (now what was the live log) and a new live log,
    /// but not the old `auth.log.1` (now `auth.log.2`, or missing when the
    /// live log is not created yet). Its cursor must survive, or the next
    /// step reads it again from 0.
    #[test]
    fn a_rotation_between_listing_and_opening_counts_nothing_twice() {
        for gap in [false, true] {
            let d = tempfile::tempdir().unwrap();
            let log = d.path().join("auth.log");
            let (l1, l2) = (d.path().join("auth.log.1"), d.path().join("auth.log.2"));
            append(&l1, "a1\na2\n");
            append(&log, "b1\n");
            let (mut all, cursors) = step(&log, files(&log, true), Vec::new());
            append(&log, "b2\n");
            let listing = files(&log, true);
            std::fs::rename(&l1, &l2).unwrap();
            std::fs::rename(&log, &l1).unwrap();
            if !gap {
                append(&log, "c1\n");
            }
            let (lines, cursors) = step(&log, listing, cursors);
            all.extend(lines);
            if gap {
                append(&log, "c1\n");
            }
            let (lines, cursors) = step(&log, files(&log, true), cursors);
            all.extend(lines);
            let (lines, _) = step(&log, files(&log, true), cursors);
            all.extend(lines);
            all.sort();
            assert_eq!(all, ["a1", "a2", "b1", "b2", "c1"], "gap: {gap}");
        }
    }
}
