//! badguys turns sshd log lines into a firewall blocklist.
//!
//! The pipeline runs one way: [`source`] reads log files (rotated siblings
//! and gzip included) into buffers of complete lines; [`parse`] finds the
//! candidate lines with a literal prefilter and turns sshd messages into
//! [`parse::Event`]s; [`state`] tallies them per address next to the
//! allowlist; [`rules`] decides who is banned and who is spared; [`store`]
//! writes the blocklist atomically under a lock; [`firewall`] makes pf or
//! nftables hold exactly that list. [`config`] resolves the command line
//! once; `main.rs` wires the stages together.

pub mod addr;
pub mod cli;
pub mod config;
mod error;
pub mod firewall;
pub mod hooks;
pub mod json;
pub mod logging;
pub mod parse;
pub mod rules;
pub mod sandbox;
pub mod source;
pub mod state;
pub mod store;
pub mod watch;

pub use error::{exit, Error};
