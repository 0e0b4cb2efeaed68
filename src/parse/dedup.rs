//! Duplicate suppression for a collector's fleet file: RELP resends and
//! journal-upload resumes deliver some lines twice. A line identical in
//! stamp, host, program, pid and message to one of the last
//! [`DEDUP_MAX`] sshd lines read is a duplicate. sshd's messages carry the
//! client port, so two connections differ; a resend carries the sender's
//! own stamp (`timereported`), so it is byte for byte the line it repeats.
//! One exception ([`may_repeat`]): sshd writes the same `Failed password
//! for root from A port P ssh2` (and its PAM lines) for each attempt of one
//! connection, often within one second, so under a whole-second stamp such
//! a line again is a real attempt; a stamp with a fraction (the collector's
//! RFC 3339) still tells a resend.
//! Bounded: a set of 64-bit hashes and their order, oldest dropped first.
//! The set is an open-addressing table (linear probing, deletion by
//! backward shift) indexed by the hash itself: every sshd line asks it, and
//! a general hash set was the largest single cost of a first sync. The
//! order is a ring of [`DEDUP_MAX`] hashes written in place.
//! The newest [`DEDUP_KEPT`] are kept in the state, so that a resend read
//! by the next run is caught too.
//!
//! The line hash ([`Dedup::key`]) is keyed: the attacker writes part of
//! every line (user names, the client's port), and with a hash anyone can
//! compute, eight chosen bytes of a user name can make one attacking line
//! hash like an earlier one, so that it is dropped as a "resend" and never
//! counted. The key is 128 random bits drawn when a state begins, kept in
//! the state file (`dedupkey`, beside the hashes it made; the file is
//! private) so that the next run still recognises a resend. The hash is
//! aHash with those seeds, a keyed hash built to resist such collisions
//! (not a cryptographic one), and fast: the byte-at-a-time FNV-1a it
//! replaced was 7-8% of a first sync's profile. Hashes kept without a key
//! (by an older version) are dropped on reading; a new build may also hash
//! differently, which only means a resend straddling the upgrade is
//! counted once more.

/// The most line hashes remembered.
pub const DEDUP_MAX: usize = 16 * 1024;
/// The newest hashes kept in the state file between runs: a resend after
/// a collector restart repeats the sender's window of unacknowledged
/// lines (RELP: a few hundred), journal-upload the entry at its cursor.
pub const DEDUP_KEPT: usize = 4096;

/// Slots of the table: twice [`DEDUP_MAX`], so it is at most half full.
const SLOTS: usize = 2 * DEDUP_MAX;
const MASK: usize = SLOTS - 1;

/// Hashes of the sshd lines read lately, and the secret key they are
/// made with.
#[derive(Clone)]
pub struct Dedup {
    key: (u64, u64),
    hasher: ahash::RandomState,
    /// The hashes in `ring`, each at or after its home slot ([`home`]);
    /// 0 marks a free slot, so the hash 0 is kept in `zero` instead.
    /// Empty until the first hash arrives.
    slots: Vec<u64>,
    zero: bool,
    /// The hashes in the set, in the order seen: filled up to
    /// [`DEDUP_MAX`], then the oldest, at `head`, is overwritten.
    ring: Vec<u64>,
    head: usize,
}

/// Where a hash's probe starts: its top bits after a multiply (the keys are
/// hashes already; the multiply spreads ones made of few bits).
fn home(key: u64) -> usize {
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - SLOTS.trailing_zeros())) as usize
}

impl PartialEq for Dedup {
    fn eq(&self, other: &Self) -> bool {
        self.order().eq(other.order())
    }
}

impl Eq for Dedup {}

impl Default for Dedup {
    /// Empty, under a fresh random key.
    fn default() -> Dedup {
        // std's RandomState is keyed from the operating system's random
        // source; two outputs of its SipHash under that key make ours.
        use std::hash::BuildHasher;
        let r = std::collections::hash_map::RandomState::new();
        Dedup::with_key((r.hash_one(1u64), r.hash_one(2u64)))
    }
}

impl std::fmt::Debug for Dedup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Dedup").field("len", &self.ring.len()).finish_non_exhaustive()
    }
}

impl Dedup {
    /// Empty, under `key` (read back from the state file).
    pub fn with_key(key: (u64, u64)) -> Dedup {
        let hasher =
            ahash::RandomState::with_seeds(key.0, key.1, key.0 ^ 0x243f_6a88_85a3_08d3, key.1 ^ 0x1319_8a2e_0370_7344);
        Dedup { key, hasher, slots: Vec::new(), zero: false, ring: Vec::new(), head: 0 }
    }

    /// The secret key, for the state file.
    pub fn secret(&self) -> (u64, u64) {
        self.key
    }

    /// The keyed hash of a line's parts that make it the same line (each
    /// part with its length, so no two splits of a line hash alike by
    /// construction).
    pub fn key(&self, stamp: &[u8], host: &[u8], program: &[u8], pid: Option<u32>, message: &[u8]) -> u64 {
        self.hasher.hash_one((stamp, host, program, pid, message))
    }

    /// Records `key`; true when it was seen already (a duplicate).
    pub fn seen(&mut self, key: u64) -> bool {
        if !self.insert(key) {
            return true;
        }
        if self.ring.len() < DEDUP_MAX {
            self.ring.push(key);
        } else {
            let old = std::mem::replace(&mut self.ring[self.head], key);
            self.head = (self.head + 1) % DEDUP_MAX;
            self.remove(old);
        }
        false
    }

    /// The hashes in the set, oldest first.
    fn order(&self) -> impl Iterator<Item = u64> + '_ {
        let (new, old) = self.ring.split_at(self.head);
        old.iter().chain(new).copied()
    }

    /// Adds `key` to the set: false when it was there already.
    fn insert(&mut self, key: u64) -> bool {
        if key == 0 {
            return !std::mem::replace(&mut self.zero, true);
        }
        if self.slots.is_empty() {
            self.slots = vec![0; SLOTS];
        }
        let mut i = home(key);
        loop {
            match self.slots[i] {
                0 => {
                    self.slots[i] = key;
                    return true;
                }
                k if k == key => return false,
                _ => i = (i + 1) & MASK,
            }
        }
    }

    /// Takes `key` out of the set, moving back the hashes probed past it
    /// so that none is left beyond a free slot.
    fn remove(&mut self, key: u64) {
        if key == 0 {
            self.zero = false;
            return;
        }
        if self.slots.is_empty() {
            return;
        }
        let mut hole = home(key);
        loop {
            match self.slots[hole] {
                0 => return,
                k if k == key => break,
                _ => hole = (hole + 1) & MASK,
            }
        }
        let mut j = (hole + 1) & MASK;
        loop {
            let k = self.slots[j];
            if k == 0 {
                break;
            }
            // `k` may fill the hole when the hole lies between its home
            // slot and where it sits (going round the end).
            if (j.wrapping_sub(home(k)) & MASK) >= (j.wrapping_sub(hole) & MASK) {
                self.slots[hole] = k;
                hole = j;
            }
            j = (j + 1) & MASK;
        }
        self.slots[hole] = 0;
    }

    /// The newest [`DEDUP_KEPT`] hashes, oldest first (for the state file).
    pub fn kept(&self) -> impl Iterator<Item = u64> + '_ {
        self.order().skip(self.ring.len().saturating_sub(DEDUP_KEPT))
    }

    pub fn len(&self) -> usize {
        self.ring.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}

/// A fixed, unkeyed hash of one string: a host name in the scanner's
/// context (kex pairs, the last event's host), kept in memory only. Host
/// names come from the syslog header that the logging host writes, not
/// from the client, so they need no key; read eight bytes at a time.
pub fn hash(bytes: &[u8]) -> u64 {
    finish(words(SEED, bytes))
}

/// The hash's start and its multiplier (odd: a bijection mod 2^64).
const SEED: u64 = 0x243f_6a88_85a3_08d3;
const MUL: u64 = 0x9fb2_1c65_1e98_df25;

/// One word into the running state: xor, odd multiply, rotate, each a
/// bijection for a given word.
fn step(h: u64, w: u64) -> u64 {
    (h ^ w).wrapping_mul(MUL).rotate_left(29)
}

/// `part` eight bytes at a time (little-endian), then its zero-padded
/// tail and its length.
fn words(mut h: u64, part: &[u8]) -> u64 {
    let mut chunks = part.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = step(h, u64::from_le_bytes(w));
    }
    // The tail as a little-endian word, without a call to memcpy (a host
    // name is often shorter than eight bytes).
    let w = chunks.remainder().iter().rev().fold(0u64, |w, &b| (w << 8) | u64::from(b));
    h = step(h, w);
    step(h, part.len() as u64)
}

/// A final mix (murmur3's, a bijection) so that every input bit reaches
/// the top bits the table is indexed by.
fn finish(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Whether `message` is one sshd writes for each attempt of a connection
/// (a failure of an authentication method, PAM's failures), under a stamp
/// too coarse (whole seconds) to tell two attempts apart.
pub fn may_repeat(stamp: &[u8], message: &[u8]) -> bool {
    if stamp.contains(&b'.') {
        return false;
    }
    // rsyslog's `message repeated N times: [ MSG]` of such a message, too.
    let m = match message.strip_prefix(b"message repeated ") {
        Some(r) => memchr::memmem::find(r, b": [ ").map_or(r, |i| &r[i + 4..]),
        None => message,
    };
    let m = m.strip_prefix(b"error: ").unwrap_or(m);
    m.starts_with(b"Failed ")
        || m.starts_with(b"PAM: ")
        || m.starts_with(b"pam_unix(sshd:auth): authentication failure")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_remembers_the_newest() {
        let mut d = Dedup::default();
        for k in 0..(DEDUP_MAX as u64 + 10) {
            assert!(!d.seen(k));
        }
        assert_eq!(d.len(), DEDUP_MAX);
        assert!(d.seen(DEDUP_MAX as u64 + 9));
        // The oldest were forgotten.
        assert!(!d.seen(0));
        // The state file keeps the newest few, oldest first.
        let kept: Vec<u64> = d.kept().collect();
        assert_eq!((kept.len(), kept.last()), (DEDUP_KEPT, Some(&0)));
    }

    #[test]
    fn the_table_answers_as_a_hash_set_does() {
        // Keys from a small range (many repeats, evictions, 0 among them)
        // and keys whose home slots collide, checked against std's set.
        let mut d = Dedup::default();
        let mut set = std::collections::HashSet::new();
        let mut order = std::collections::VecDeque::new();
        let mut x = 0x1234_5678_9abc_def1u64;
        for n in 0..600_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = match n % 3 {
                0 => x % 100_000,
                1 => (x % 64) << 58,
                _ => x,
            };
            let want = !set.insert(key);
            if !want {
                order.push_back(key);
                if order.len() > DEDUP_MAX {
                    set.remove(&order.pop_front().unwrap());
                }
            }
            assert_eq!(d.seen(key), want, "key {key:#x} at {n}");
        }
        assert!(d.order().eq(order.iter().copied()));
        assert_eq!(d.slots.iter().filter(|&&k| k != 0).count() + usize::from(d.zero), set.len());
    }

    #[test]
    fn the_line_hash_is_keyed_and_fixed_under_its_key() {
        let line =
            |d: &Dedup| d.key(b"Dec  1 19:47:14", b"h1", b"sshd", Some(7), b"Invalid user a from 192.0.2.1 port 22");
        let (a, b) = (Dedup::default(), Dedup::default());
        assert_ne!(a.secret(), b.secret(), "each state draws its own key");
        assert_ne!(line(&a), line(&b), "so one line hashes apart under two keys");
        // The same key (as read back from the state) gives the same hash.
        assert_eq!(line(&Dedup::with_key(a.secret())), line(&a));
        assert!(!format!("{a:?}").contains(&format!("{}", a.secret().0)), "Debug never shows the key");
        // The scanner's in-memory host hash stays fixed.
        assert_eq!(hash(b""), 0x1dca_83e9_4899_5f71, "{:#018x}", hash(b""));
    }

    #[test]
    fn where_parts_split_tells_lines_apart() {
        let d = Dedup::default();
        let m = b"Invalid user a from 192.0.2.1 port 22";
        assert_ne!(d.key(b"s", b"ab", b"c", None, m), d.key(b"s", b"a", b"bc", None, m));
        assert_ne!(d.key(b"s", b"a", b"sshd", None, b"x\0"), d.key(b"s", b"a", b"sshd", None, b"x"));
        assert_ne!(d.key(b"s", b"a", b"sshd", None, m), d.key(b"s", b"a", b"sshd", Some(u32::MAX - 1), m));
        // Every single-byte change of a long message tells it apart.
        let base = d.key(b"s", b"h", b"sshd", Some(1), m);
        for i in 0..m.len() {
            let mut n = m.to_vec();
            n[i] ^= 1;
            assert_ne!(base, d.key(b"s", b"h", b"sshd", Some(1), &n), "byte {i}");
        }
    }

    #[test]
    fn port_pid_and_host_tell_lines_apart() {
        let d = Dedup::default();
        let a = d.key(b"2026-12-01T19:47:14Z", b"h1", b"sshd", Some(1), b"Invalid user a from 192.0.2.1 port 1");
        assert_ne!(a, d.key(b"2026-12-01T19:47:14Z", b"h2", b"sshd", Some(1), b"Invalid user a from 192.0.2.1 port 1"));
        assert_ne!(a, d.key(b"2026-12-01T19:47:14Z", b"h1", b"sshd", Some(2), b"Invalid user a from 192.0.2.1 port 1"));
        assert_ne!(a, d.key(b"2026-12-01T19:47:14Z", b"h1", b"sshd", Some(1), b"Invalid user a from 192.0.2.1 port 2"));
        assert_eq!(a, d.key(b"2026-12-01T19:47:14Z", b"h1", b"sshd", Some(1), b"Invalid user a from 192.0.2.1 port 1"));
    }
}
