//! The `badguys` command: parses the command line, resolves the
//! [`Config`], calls one function per command, and maps errors to exit
//! statuses. The only user of `anyhow`.

use std::process::ExitCode as Status;

use anyhow::Result;
use clap::Parser;

use badguys::cli::{Cli, Command};
use badguys::commands;
use badguys::config::{Config, SeeFlags};
use badguys::{Error, ExitCode};

fn main() -> Status {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::Usage } else { ExitCode::Ok }.into();
        }
    };
    let conf = cli.config.as_deref();
    // Logging starts once the config is read: `syslog = yes` may be there.
    let mut syslog = false;
    let mut start = |cfg: Result<Config, Error>| -> Result<Config> {
        syslog = cfg.as_ref().is_ok_and(|c| c.syslog);
        badguys::logging::init(cli.verbose, cli.quiet, syslog);
        Ok(cfg?)
    };
    let load = |scan, out, watch| Config::load(conf, scan, out, watch, SeeFlags::default());
    let see = |history, geo| SeeFlags { history: Some(history), geo };
    let load_see = |scan, out, watch, see| Config::load(conf, scan, out, watch, see);
    let result: Result<()> = match &cli.command {
        Command::Sync(a) => start(load_see(Some(&a.scan), &a.output, None, see(&a.history, &[])))
            .and_then(|c| Ok(commands::sync(&c, a)?)),
        Command::Watch(a) => start(load_see(Some(&a.scan), &a.output, Some(a), see(&a.history, &[])))
            .and_then(|c| Ok(commands::watch(&c)?)),
        Command::Ban(a) => {
            start(load_see(None, &a.output, None, see(&a.history, &[]))).and_then(|c| Ok(commands::ban(&c, a)?))
        }
        Command::Unban(a) => {
            start(load_see(None, &a.output, None, see(&a.history, &[]))).and_then(|c| Ok(commands::unban(&c, a)?))
        }
        Command::Export(a) => start(load(None, &a.output, None)).and_then(|c| Ok(commands::export(&c, a)?)),
        Command::List(a) => start(load(None, &a.output, None)).and_then(|c| Ok(commands::list(&c, a)?)),
        Command::Explain(a) => start(load(Some(&a.scan), &a.output, None)).and_then(|c| Ok(commands::explain(&c, a)?)),
        Command::Check(a) => {
            badguys::logging::init(cli.verbose, cli.quiet, false);
            load(Some(&a.scan), &a.output, None).and_then(|c| commands::check(&c)).map_err(Into::into)
        }
        Command::Reload(a) => start(load(None, a, None)).and_then(|c| Ok(commands::reload(&c)?)),
        Command::Rules => {
            badguys::logging::init(cli.verbose, cli.quiet, false);
            commands::rules().map_err(Into::into)
        }
        Command::Test(a) => {
            let scan = badguys::cli::ScanArgs {
                rules: a.rules,
                threshold: a.threshold,
                rule_threshold: a.rule_threshold.clone(),
                ..Default::default()
            };
            start(load(Some(&scan), &Default::default(), None)).and_then(|c| Ok(commands::test(&c, a)?))
        }
        Command::Stats(a) => start(load_see(None, &a.output, None, see(&a.view.history, &a.view.geo)))
            .and_then(|c| Ok(commands::stats(&c, a)?)),
        Command::Report(a) => start(load_see(None, &a.output, None, see(&a.view.history, &a.view.geo)))
            .and_then(|c| Ok(commands::report(&c, a)?)),
    };
    let Err(e) = result else { return ExitCode::Ok.into() };
    let lib = e.downcast_ref::<Error>();
    if lib.is_some_and(Error::is_broken_pipe) {
        return ExitCode::Ok.into();
    }
    if syslog {
        tracing::error!("{e:#}");
    } else {
        eprintln!("badguys: error: {e:#}");
    }
    lib.map_or(ExitCode::Internal, Error::exit_code).into()
}
