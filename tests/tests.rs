//! The one integration-test binary. Each module is a topic; `harness` gives
//! every test a temp dir and a `badguys` command to run in it.

mod harness;

mod child;
mod corpus;
mod firewall_nft;
mod firewall_pf;
mod fleet;
mod geo;
mod history;
mod include;
mod inputs;
mod ipv6prefix;
mod journal;
mod linetest;
mod live;
mod package;
mod pipeline;
mod props;
mod repeat;
mod report;
mod retention;
mod rotation;
mod state;
mod subnet;
mod sync;
mod watch;
