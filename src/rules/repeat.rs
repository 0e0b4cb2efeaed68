//! Repeat offenders: how long a ban by the rules lasts, and how the count
//! of bans behind it grows and decays. The n-th ban of an address lasts
//! `--expire` × `--expire-factor`^(n-1), capped at `--expire-max`, in
//! `--expire`'s sense: the address leaves the list when it has not been
//! seen for that long. Each record counts its bans ([`Record::bans`]).
//! Quiet time, when the address neither attacks nor is listed, halves the
//! count once per full `--decay` (so one bad day does not mark a user for
//! ever); `unban` by the admin resets it to 0.

use super::Policy;
use crate::state::Record;

/// The defaults [`crate::config`] resolves: the cap when `--expire-max` is
/// not given (or `--expire`, when that is longer), and so the decay.
pub const DEFAULT_MAX: i64 = 30 * 86400;

/// The repeat-offender knobs of a [`Policy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repeat {
    /// Each ban lasts this many times the one before (1: every ban lasts
    /// `--expire`).
    pub factor: u32,
    /// No ban lasts longer (seconds); `None`: no cap but the clock's.
    pub max: Option<i64>,
    /// Each full quiet period this long halves the ban count; `None`: the
    /// count never decays.
    pub decay: Option<i64>,
}

impl Default for Repeat {
    fn default() -> Repeat {
        Repeat { factor: 1, max: None, decay: None }
    }
}

impl Repeat {
    /// The settings resolved ([`crate::config`]): the cap is 30 days (or
    /// `--expire`, if longer) unless given, the decay the cap.
    pub fn resolve(
        expire: Option<i64>,
        factor: Option<u32>,
        max: Option<i64>,
        decay: Option<i64>,
    ) -> Result<Repeat, String> {
        let factor = factor.unwrap_or(1);
        let Some(expire) = expire else {
            if factor > 1 || max.is_some() {
                return Err("--expire-factor and --expire-max need --expire".into());
            }
            return Ok(Repeat { factor, max: None, decay });
        };
        if let Some(m) = max.filter(|&m| m < expire) {
            return Err(format!("--expire-max ({m}s) is shorter than --expire ({expire}s)"));
        }
        let max = max.unwrap_or(DEFAULT_MAX.max(expire));
        Ok(Repeat { factor, max: Some(max), decay: Some(decay.unwrap_or(max)) })
    }
}

impl Policy {
    /// How long the `n`-th ban lasts (0 counts as the first: a record
    /// listed before bans were counted); `None` without `--expire`.
    pub fn ban_length(&self, n: u32) -> Option<i64> {
        let expire = self.expire?;
        let max = self.repeat.max.unwrap_or(i64::MAX).max(expire);
        let mut d = expire;
        for _ in 1..n.max(1) {
            if self.repeat.factor <= 1 || d >= max {
                break;
            }
            d = d.saturating_mul(i64::from(self.repeat.factor));
        }
        Some(d.min(max))
    }

    /// The ban count of `rec` at `now`, after the decay of the quiet time
    /// since [`Record::quiet`] (the stored count is that of the last ban).
    pub fn bans_at(&self, rec: &Record, now: i64) -> u32 {
        if rec.listed.is_some() {
            return rec.bans;
        }
        decayed(rec.bans, now.saturating_sub(rec.quiet), self.repeat.decay)
    }

    /// `3rd ban: lasts 16h = 1h × 4², capped at 30d`, for `explain`.
    pub fn ban_why(&self, n: u32) -> Option<String> {
        let (expire, len) = (self.expire?, self.ban_length(n)?);
        let n = n.max(1);
        let mut s = format!("{} ban: lasts {}", ordinal(n), span(len));
        if n > 1 && self.repeat.factor > 1 {
            s.push_str(&format!(" = {} × {}{}", span(expire), self.repeat.factor, power(n - 1)));
        }
        if let Some(max) = self.repeat.max.filter(|&m| len >= m && self.repeat.factor > 1) {
            s.push_str(&format!(", capped at {}", span(max)));
        }
        Some(s)
    }
}

/// `count` after `quiet` seconds without attack or listing: halved once
/// per full `decay`.
fn decayed(count: u32, quiet: i64, decay: Option<i64>) -> u32 {
    match decay {
        Some(d) if d > 0 && quiet >= d => {
            let halvings = quiet / d;
            if halvings >= 32 {
                0
            } else {
                count >> halvings
            }
        }
        _ => count,
    }
}

/// An attack at `t` on a record that is not listed: the quiet time before
/// it decays the count, and the quiet period starts again at `t`. (A line
/// older than the quiet start changes nothing.)
pub(super) fn note_attack(rec: &mut Record, policy: &Policy, t: i64) {
    if rec.listed.is_some() || rec.bans == 0 {
        return;
    }
    rec.bans = decayed(rec.bans, t.saturating_sub(rec.quiet), policy.repeat.decay);
    rec.quiet = rec.quiet.max(t);
}

/// A ban by the rules starts: the count grows.
pub(super) fn note_listed(rec: &mut Record) {
    rec.bans = rec.bans.saturating_add(1);
}

/// A ban by the rules ended at `end` (the quiet period starts there).
pub(super) fn note_ended(rec: &mut Record, end: i64) {
    rec.bans = rec.bans.max(1);
    rec.quiet = end;
}

/// `unban`: the admin forgave the address; its next ban is a first one.
pub(super) fn forgive(rec: &mut Record) {
    rec.bans = 0;
    rec.quiet = 0;
}

/// `1st`, `2nd`, `3rd`, `4th`, `11th`, `21st`.
pub fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// `²`, `³`, `¹⁰`.
fn power(mut e: u32) -> String {
    const DIGITS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let mut s = Vec::new();
    loop {
        s.push(DIGITS[(e % 10) as usize]);
        e /= 10;
        if e == 0 {
            break;
        }
    }
    s.iter().rev().collect()
}

/// A duration in the largest unit that divides it: `16h`, `30d`, `90m`,
/// `3700s`.
pub fn span(s: i64) -> String {
    for (unit, n) in [("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)] {
        if s >= n && s % n == 0 {
            return format!("{}{unit}", s / n);
        }
    }
    format!("{s}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;
    const D: i64 = 86400;

    fn policy(factor: u32, max: Option<i64>, decay: Option<i64>) -> Policy {
        Policy { expire: Some(H), repeat: Repeat { factor, max, decay }, ..Policy::default() }
    }

    #[test]
    fn lengths_grow_by_the_factor_up_to_the_cap() {
        let p = policy(4, Some(30 * D), None);
        let lens: Vec<i64> = (0..=6).map(|n| p.ban_length(n).unwrap()).collect();
        assert_eq!(lens, [H, H, 4 * H, 16 * H, 64 * H, 256 * H, 30 * D]);
        assert_eq!(p.ban_length(u32::MAX), Some(30 * D));
        // Factor 1 is today's behaviour: every ban lasts --expire.
        assert_eq!(policy(1, Some(30 * D), None).ban_length(9), Some(H));
        // No cap: the clock's end, never a wrap.
        assert_eq!(policy(4, None, None).ban_length(u32::MAX), Some(i64::MAX));
        assert_eq!(Policy::default().ban_length(3), None);
        assert_eq!(p.ban_why(3).unwrap(), "3rd ban: lasts 16h = 1h × 4²");
        assert_eq!(p.ban_why(1).unwrap(), "1st ban: lasts 1h");
        assert_eq!(p.ban_why(7).unwrap(), "7th ban: lasts 30d = 1h × 4⁶, capped at 30d");
        assert_eq!(p.ban_why(12).unwrap(), "12th ban: lasts 30d = 1h × 4¹¹, capped at 30d");
        assert_eq!(
            (ordinal(2), ordinal(11), ordinal(22), ordinal(113)),
            ("2nd".into(), "11th".into(), "22nd".into(), "113th".into())
        );
        assert_eq!((span(90 * 60), span(14 * D), span(3601)), ("90m".into(), "2w".into(), "3601s".into()));
    }

    #[test]
    fn quiet_time_halves_the_count_per_full_decay() {
        let p = policy(4, Some(30 * D), Some(30 * D));
        let mut r = Record { bans: 5, quiet: 0, ..Record::default() };
        assert_eq!(p.bans_at(&r, 29 * D), 5);
        assert_eq!(p.bans_at(&r, 30 * D), 2);
        assert_eq!(p.bans_at(&r, 60 * D), 1);
        assert_eq!(p.bans_at(&r, 90 * D), 0);
        assert_eq!(p.bans_at(&r, i64::MAX), 0);
        // Attacks 29 days apart are no quiet period: nothing decays.
        for t in [29 * D, 58 * D, 87 * D] {
            note_attack(&mut r, &p, t);
        }
        assert_eq!((r.bans, r.quiet), (5, 87 * D));
        note_attack(&mut r, &p, 120 * D);
        assert_eq!(r.bans, 2);
        // Listed: the count is the current ban's and does not decay.
        r.listed = Some(120 * D);
        assert_eq!(p.bans_at(&r, 999 * D), 2);
        // Without a decay the count stays.
        assert_eq!(policy(4, None, None).bans_at(&Record { bans: 3, ..Record::default() }, i64::MAX), 3);
    }
}
