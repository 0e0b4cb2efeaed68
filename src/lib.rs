//! badguys turns sshd log lines into a firewall blocklist.
//!
//! The pipeline runs one way: [`source`] reads what is new in log files
//! (rotated siblings and gzip included, through cursors) into buffers of
//! complete lines; [`parse`] finds the candidate lines with a literal
//! prefilter and turns sshd messages into [`parse::Event`]s; [`state`]
//! keeps a record per address; [`rules`] decides who is listed, spared or
//! expired; [`store`] writes the blocklist and the state atomically under a
//! lock; [`firewall`] makes pf or nftables hold exactly that list (or adds
//! to it). [`config`] resolves flags and config file once; `main.rs` and
//! [`watch`] wire the stages together; [`hooks`] runs alert programs.

pub mod addr;
mod child;
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
