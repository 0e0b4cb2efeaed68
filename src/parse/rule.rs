//! The rule vocabulary: every sshd message shape badguys recognizes, with the
//! stable name used in flags, output, state and docs, and whether it is on by
//! default. Owns `--rules` parsing; knows nothing about lines.

use std::fmt;
use std::str::FromStr;

/// One recognized attack message. The names are part of the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// `Invalid user NAME from ADDR port N`
    InvalidUser,
    /// `Disconnected from authenticating user root ADDR port N [preauth]`
    RootDisconnect,
    /// `error: kex_exchange_identification: …` then `Connection reset by ADDR port N`
    /// from the same process.
    KexReset,
    /// `Failed password for [invalid user ]NAME from ADDR port N ssh2`
    FailedPassword,
    /// `error: maximum authentication attempts exceeded for [invalid user ]NAME from ADDR port N ssh2`
    MaxAuth,
    /// `Did not receive identification string from ADDR[ port N]`
    NoIdent,
    /// `banner exchange: Connection from ADDR port N: invalid format`
    BadBanner,
    /// `Unable to negotiate with ADDR port N: no matching … found. Their offer: …`
    Negotiation,
    /// `drop connection #N from [ADDR]:PORT on [ADDR]:PORT penalty: …` (OpenSSH 9.8+)
    Penalty,
}

impl Rule {
    pub const ALL: [Rule; 9] = [
        Rule::InvalidUser,
        Rule::RootDisconnect,
        Rule::KexReset,
        Rule::FailedPassword,
        Rule::MaxAuth,
        Rule::NoIdent,
        Rule::BadBanner,
        Rule::Negotiation,
        Rule::Penalty,
    ];

    /// The stable name.
    pub fn name(self) -> &'static str {
        match self {
            Rule::InvalidUser => "invalid-user",
            Rule::RootDisconnect => "root-disconnect",
            Rule::KexReset => "kex-reset",
            Rule::FailedPassword => "failed-password",
            Rule::MaxAuth => "max-auth",
            Rule::NoIdent => "no-ident",
            Rule::BadBanner => "bad-banner",
            Rule::Negotiation => "negotiation",
            Rule::Penalty => "penalty",
        }
    }

    /// On unless `--rules` says otherwise: the three rules of the seed script.
    pub fn default_on(self) -> bool {
        matches!(self, Rule::InvalidUser | Rule::RootDisconnect | Rule::KexReset)
    }

    /// A one-line description with an example message, for `badguys rules`.
    pub fn describe(self) -> &'static str {
        match self {
            Rule::InvalidUser => "Invalid user admin from 203.0.113.5 port 52144",
            Rule::RootDisconnect => "Disconnected from authenticating user root 203.0.113.5 port 52144 [preauth]",
            Rule::KexReset => {
                "error: kex_exchange_identification: read: Connection reset by peer, then \
                 Connection reset by 203.0.113.5 port 52144 (same sshd process)"
            }
            Rule::FailedPassword => "Failed password for invalid user admin from 203.0.113.5 port 52144 ssh2",
            Rule::MaxAuth => {
                "error: maximum authentication attempts exceeded for root from 203.0.113.5 port 52144 ssh2 [preauth]"
            }
            Rule::NoIdent => "Did not receive identification string from 203.0.113.5 port 52144",
            Rule::BadBanner => "banner exchange: Connection from 203.0.113.5 port 52144: invalid format",
            Rule::Negotiation => {
                "Unable to negotiate with 203.0.113.5 port 52144: no matching key exchange method found. Their offer: …"
            }
            Rule::Penalty => {
                "drop connection #3 from [203.0.113.5]:52144 on [192.0.2.1]:22 penalty: failed authentication"
            }
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown rule name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown rule {0:?} (known: {known}, or all)", known = Rule::ALL.map(Rule::name).join(", "))]
pub struct UnknownRule(pub String);

impl FromStr for Rule {
    type Err = UnknownRule;
    fn from_str(s: &str) -> Result<Rule, UnknownRule> {
        Rule::ALL.into_iter().find(|r| r.name() == s).ok_or_else(|| UnknownRule(s.to_string()))
    }
}

/// A set of rules, as `--rules` selects them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleSet(u16);

impl RuleSet {
    pub fn all() -> RuleSet {
        RuleSet(Rule::ALL.iter().fold(0, |m, r| m | r.bit()))
    }

    pub fn defaults() -> RuleSet {
        RuleSet(Rule::ALL.iter().filter(|r| r.default_on()).fold(0, |m, r| m | r.bit()))
    }

    pub fn empty() -> RuleSet {
        RuleSet(0)
    }

    pub fn with(self, r: Rule) -> RuleSet {
        RuleSet(self.0 | r.bit())
    }

    pub fn contains(self, r: Rule) -> bool {
        self.0 & r.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Rule> {
        Rule::ALL.into_iter().filter(move |r| self.contains(*r))
    }
}

impl Default for RuleSet {
    fn default() -> RuleSet {
        RuleSet::defaults()
    }
}

impl FromStr for RuleSet {
    type Err = UnknownRule;
    /// A comma-separated list of rule names, or `all`.
    fn from_str(s: &str) -> Result<RuleSet, UnknownRule> {
        let mut set = RuleSet::empty();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            set = match name {
                "all" => RuleSet::all(),
                "default" => RuleSet(set.0 | RuleSet::defaults().0),
                _ => set.with(name.parse()?),
            };
        }
        if set == RuleSet::empty() {
            return Err(UnknownRule(s.to_string()));
        }
        Ok(set)
    }
}

impl fmt::Display for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Rule::name).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in Rule::ALL {
            assert_eq!(r.name().parse::<Rule>().unwrap(), r);
        }
        assert_eq!(RuleSet::defaults().to_string(), "invalid-user,root-disconnect,kex-reset");
        assert_eq!("all".parse::<RuleSet>().unwrap(), RuleSet::all());
        assert!("default,failed-password".parse::<RuleSet>().unwrap().contains(Rule::FailedPassword));
        assert!("bogus".parse::<RuleSet>().is_err());
        assert!("".parse::<RuleSet>().is_err());
    }
}
