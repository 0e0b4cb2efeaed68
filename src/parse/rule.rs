//! The rule vocabulary: every sshd message shape badguys recognizes, with the
//! stable name used in flags, output, state and docs, whether it is on by
//! default, and the facts `badguys rules` and the README print about it
//! (an example line, what could make it ban a real user, the threshold we
//! recommend). Owns `--rules` parsing; knows nothing about lines.

use std::fmt;
use std::str::FromStr;

/// One recognized attack message. The names are part of the interface; new
/// rules are appended, so `Rule as usize` indexes stay stable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// `Invalid user NAME from ADDR port N` (and the old `Illegal user NAME from ADDR`)
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
    /// `Failed METHOD for …` of every method but password and the publickey
    /// or none probes of an existing user.
    FailedAuth,
    /// `Failed publickey for USER from ADDR port N ssh2: KEY` of an existing user.
    FailedPublickey,
    /// `error: PAM: Authentication failure for …`, pam_unix `authentication
    /// failure; … rhost=ADDR` and `PAM N more authentication failures; … rhost=ADDR`.
    PamFailure,
    /// `User USER from ADDR not allowed because REASON`
    NotAllowed,
    /// `ROOT LOGIN REFUSED FROM ADDR[ port N]`
    RootRefused,
    /// `Connection closed by|Disconnected from|Connection reset by [invalid user
    /// USER |authenticating user USER ]ADDR port N [preauth]`, `Disconnecting …`
    /// and `Received disconnect from ADDR port N:CODE: … [preauth]`.
    PreauthDisconnect,
    /// `Timeout before authentication for ADDR port N`
    PreauthTimeout,
    /// `ssh_dispatch_run_fatal: Connection from … ADDR port N: … [preauth]`
    PreauthFatal,
    /// tcp_wrappers: `refused connect from NAME (ADDR)`
    TcpWrappers,
    /// `drop connection #N from [ADDR]:P on [ADDR]:P past MaxStartups` (OpenSSH 9.8+)
    MaxStartups,
}

/// What `badguys rules` and the README say about one rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleInfo {
    /// What the rule counts, in one line.
    pub summary: &'static str,
    /// A message of the shape, as sshd writes it (documentation addresses).
    pub example: &'static str,
    /// What could make it count a real user.
    pub risk: &'static str,
    /// The threshold we recommend for it alone (events within the window).
    pub threshold: u32,
    /// Whether its hits may join the other rules' evidence (the shared
    /// `--threshold` pool): false for load shedding, which no single source
    /// causes alone; such a rule counts apart, at `threshold` unless
    /// `--rule-threshold` says otherwise (`rules::Policy::own_defaults`).
    pub peer_ban: bool,
}

impl Rule {
    pub const ALL: [Rule; 19] = [
        Rule::InvalidUser,
        Rule::RootDisconnect,
        Rule::KexReset,
        Rule::FailedPassword,
        Rule::MaxAuth,
        Rule::NoIdent,
        Rule::BadBanner,
        Rule::Negotiation,
        Rule::Penalty,
        Rule::FailedAuth,
        Rule::FailedPublickey,
        Rule::PamFailure,
        Rule::NotAllowed,
        Rule::RootRefused,
        Rule::PreauthDisconnect,
        Rule::PreauthTimeout,
        Rule::PreauthFatal,
        Rule::TcpWrappers,
        Rule::MaxStartups,
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
            Rule::FailedAuth => "failed-auth",
            Rule::FailedPublickey => "failed-publickey",
            Rule::PamFailure => "pam-failure",
            Rule::NotAllowed => "not-allowed",
            Rule::RootRefused => "root-refused",
            Rule::PreauthDisconnect => "preauth-disconnect",
            Rule::PreauthTimeout => "preauth-timeout",
            Rule::PreauthFatal => "preauth-fatal",
            Rule::TcpWrappers => "tcp-wrappers",
            Rule::MaxStartups => "maxstartups",
        }
    }

    /// On unless `--rules` says otherwise: the three rules of the seed script.
    pub fn default_on(self) -> bool {
        matches!(self, Rule::InvalidUser | Rule::RootDisconnect | Rule::KexReset)
    }

    /// An example message, for `badguys rules`.
    pub fn describe(self) -> &'static str {
        self.info().example
    }

    /// Everything `badguys rules` and the README say about the rule.
    pub fn info(self) -> &'static RuleInfo {
        &INFO[self as usize]
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

const fn info(summary: &'static str, example: &'static str, risk: &'static str, threshold: u32) -> RuleInfo {
    RuleInfo { summary, example, risk, threshold, peer_ban: true }
}

/// Indexed by `Rule as usize`.
static INFO: [RuleInfo; Rule::ALL.len()] = [
    info(
        "a user name that does not exist on this host",
        "Invalid user admin from 203.0.113.5 port 52144",
        "a real user who mistypes their login name",
        3,
    ),
    info(
        "a client that gave up authenticating as root",
        "Disconnected from authenticating user root 203.0.113.5 port 52144 [preauth]",
        "an admin who logs in as root and cancels or runs out of keys",
        3,
    ),
    info(
        "a connection dropped during the banner exchange (kex error, then reset)",
        "error: kex_exchange_identification: read: Connection reset by peer, then \
         Connection reset by 203.0.113.5 port 52144 (same sshd process)",
        "a flaky network, or a health check from a real user's host",
        3,
    ),
    info(
        "a wrong password",
        "Failed password for invalid user admin from 203.0.113.5 port 52144 ssh2",
        "a real user who mistypes their password",
        5,
    ),
    info(
        "MaxAuthTries used up",
        "error: maximum authentication attempts exceeded for root from 203.0.113.5 port 52144 ssh2 [preauth]",
        "a client with more keys in its agent than MaxAuthTries",
        3,
    ),
    info(
        "a connection that never sent an SSH banner (OpenSSH 7.9 and older)",
        "Did not receive identification string from 203.0.113.5 port 52144",
        "port checks and monitoring probes from a real user's network",
        5,
    ),
    info(
        "a client whose banner is not SSH",
        "banner exchange: Connection from 203.0.113.5 port 52144: invalid format",
        "a misconfigured client or proxy speaking another protocol",
        3,
    ),
    info(
        "a client with no algorithm in common",
        "Unable to negotiate with 203.0.113.5 port 52144: no matching key exchange method found. Their offer: …",
        "an old client of a real user after the server dropped its algorithms",
        3,
    ),
    info(
        "OpenSSH 9.8+ PerSourcePenalties refusing a penalised source",
        "drop connection #3 from [203.0.113.5]:52144 on [192.0.2.1]:22 penalty: failed authentication",
        "whatever earned the penalty (a real user's wrong passwords too)",
        3,
    ),
    info(
        "failures of other methods: keyboard-interactive, hostbased, gssapi, none or publickey of a missing user",
        "Failed keyboard-interactive/pam for invalid user admin from 203.0.113.5 port 52144 ssh2",
        "a real user who mistypes a keyboard-interactive (PAM) password",
        5,
    ),
    info(
        "a key refused for an existing user (riskier: clients offer keys in turn)",
        "Failed publickey for alice from 203.0.113.5 port 52144 ssh2: ED25519 SHA256:…",
        "a real user whose agent offers other keys before the right one: every login logs failures",
        10,
    ),
    info(
        "PAM's own failure lines (each wrong password counts again next to failed-password)",
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.5  user=root",
        "a real user who mistypes their password; overlaps failed-password and failed-auth",
        5,
    ),
    info(
        "an existing user refused by AllowUsers, DenyUsers, AllowGroups or DenyGroups",
        "User bob from 203.0.113.5 not allowed because not listed in AllowUsers",
        "a real user not (yet) in AllowUsers or AllowGroups",
        3,
    ),
    info(
        "a root login refused by PermitRootLogin",
        "ROOT LOGIN REFUSED FROM 203.0.113.5 port 52144",
        "an admin who forgets that root may not log in",
        3,
    ),
    info(
        "a client that left before authenticating (riskier)",
        "Connection closed by invalid user admin 203.0.113.5 port 52144 [preauth]",
        "a real user who cancels at the password prompt, runs out of keys, or a monitoring probe",
        10,
    ),
    info(
        "LoginGraceTime ran out before authentication",
        "fatal: Timeout before authentication for 203.0.113.5 port 52144",
        "a real user who leaves a password prompt open",
        5,
    ),
    info(
        "a protocol error before authentication",
        "ssh_dispatch_run_fatal: Connection from 203.0.113.5 port 52144: message authentication code incorrect [preauth]",
        "a real user's broken network path or buggy client",
        5,
    ),
    info(
        "tcp_wrappers (hosts.deny) refusing a connection",
        "refused connect from host.example (203.0.113.5)",
        "a real user connecting from a network hosts.deny covers",
        3,
    ),
    RuleInfo {
        summary: "OpenSSH 9.8+ dropping a connection past MaxStartups (load shedding)",
        example: "drop connection #12 from [203.0.113.5]:52144 on [192.0.2.1]:22 past MaxStartups",
        risk: "real users who connect while scanners fill MaxStartups are dropped too: \
               it counts apart, never with other rules' evidence, at its own threshold (20 unless \
               --rule-threshold maxstartups=N)",
        threshold: 20,
        peer_ban: false,
    },
];

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
pub struct RuleSet(u32);

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
