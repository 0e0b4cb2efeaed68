//! badguys turns sshd log lines into a firewall blocklist.
//!
//! The pipeline runs one way: [`source`] reads what is new in log files
//! (rotated siblings and gzip included, through cursors) into buffers of
//! complete lines; [`parse`] finds the candidate lines with a literal
//! prefilter and turns sshd messages into [`parse::Event`]s; [`state`]
//! keeps a record per address ([`allow`] the networks never listed);
//! [`rules`] decides who is listed, spared or expired; [`store`] writes the
//! blocklist and the state atomically under a lock; [`firewall`] makes pf or
//! nftables hold exactly that list (or adds to it). [`store::history`] keeps
//! counts per day that outlive the logs; [`show`], [`geo`], [`stats`] and
//! [`report`] make the views. [`cli`] and [`config`] resolve flags and config
//! file once; [`engine`] and [`watch`] are the only places that wire the
//! stages together, [`commands`] runs one command each; [`hooks`] runs alert
//! programs.

pub mod addr;
pub mod allow;
mod child;
pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
mod error;
pub mod firewall;
pub mod fleet;
pub mod geo;
pub mod hooks;
pub mod include;
pub mod linetest;
pub mod logging;
pub mod parse;
pub mod report;
pub mod retention;
pub mod rules;
pub mod sandbox;
pub mod show;
pub mod source;
pub mod state;
pub mod stats;
pub mod store;
pub mod watch;

pub use error::{Error, ExitCode};

/// FNV-1a, 64 bits: a cheap stable hash for short identifiers (a host name
/// in a kex key, a file's first line, the settings behind the state).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_from(0xcbf2_9ce4_8422_2325, bytes)
}

/// [`fnv1a`] continued from the sum `h` of the bytes before `bytes`.
pub(crate) fn fnv1a_from(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A testing aid from the environment (`BADGUYS_NOW`, `BADGUYS_JOURNALCTL`),
/// honoured only in debug builds: the integration tests run the debug
/// binary, and a release build run by root must not let its environment
/// set the clock or choose a program to run.
pub(crate) fn debug_env(name: &str) -> Option<String> {
    debug_env_if(cfg!(debug_assertions), name)
}

fn debug_env_if(enabled: bool, name: &str) -> Option<String> {
    if !enabled {
        return None;
    }
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn testing_aids_are_ignored_in_release_builds() {
        // PATH is always set: read through the accessor it shows the gate.
        assert!(super::debug_env_if(true, "PATH").is_some());
        assert_eq!(super::debug_env_if(false, "PATH"), None);
        assert_eq!(super::debug_env("PATH").is_some(), cfg!(debug_assertions));
    }
}
