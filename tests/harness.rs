//! A temp dir per test, the `badguys` binary, and the rule that a test
//! needing root or a system tool fails under CI instead of skipping.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_badguys");

/// A scratch directory with the usual file names.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env { dir: tempfile::Builder::new().prefix("badguys-test.").tempdir().unwrap() }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The blocklist path every `sync` here writes.
    pub fn out(&self) -> PathBuf {
        self.path("badguys")
    }

    pub fn log(&self) -> PathBuf {
        self.path("auth.log")
    }

    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// `badguys ARGS…` with a clean environment.
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new(BIN);
        c.args(args).current_dir(self.dir.path()).env_remove("RUST_LOG");
        c
    }

    /// The argv of `badguys sync` on auth.log into `badguys`, no firewall,
    /// no allow file; `extra` follows, and an `--out`, `--log`,
    /// `--firewall` or `--allow-file` in it replaces the default.
    pub fn sync_args(&self, extra: &[&str]) -> Vec<String> {
        let defaults = [
            ("--out", self.out().display().to_string()),
            ("--state", self.path("state").display().to_string()),
            ("--log", self.log().display().to_string()),
            ("--firewall", "none".to_string()),
            ("--allow-file", "/dev/null".to_string()),
            // Tests written for per-address IPv6 records; the /64 default
            // has its own (ipv6prefix), which pass --ipv6-prefix 64.
            ("--ipv6-prefix", "128".to_string()),
            // The lines of most tests are dated months ago (`sshd`): the 30
            // days' --forget would drop their records between two syncs.
            // The tests of forgetting (retention) pass their own.
            ("--forget", "never".to_string()),
        ];
        let mut args = vec!["sync".to_string()];
        for (flag, value) in defaults {
            if !extra.contains(&flag) {
                args.extend([flag.to_string(), value]);
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// [`Env::sync_args`] for `watch`: the same files and defaults.
    pub fn watch_args(&self, extra: &[&str]) -> Vec<String> {
        let mut args = self.sync_args(extra);
        args[0] = "watch".into();
        args
    }

    /// `badguys ARGS… --out … --state … --firewall none --allow-file
    /// /dev/null`, for the commands other than sync (ban, list, explain…).
    pub fn command(&self, args: &[&str]) -> Run {
        let (out, state) = (self.out(), self.path("state"));
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--out", out.to_str().unwrap(), "--state", state.to_str().unwrap()]);
        all.extend(["--firewall", "none", "--allow-file", "/dev/null"]);
        run(self.cmd(all))
    }

    /// Appends `text` to the file `name`, creating it.
    pub fn append(&self, name: &str, text: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(self.path(name)).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// Runs `badguys` with [`Env::sync_args`].
    pub fn sync(&self, extra: &[&str]) -> Run {
        run(self.cmd(self.sync_args(extra)))
    }
}

/// A finished command, with its output as text.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn ok(&self) -> &Run {
        assert_eq!(self.code, 0, "expected success:\n{self:#?}");
        self
    }

    #[track_caller]
    pub fn code(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "expected exit {code}:\n{self:#?}");
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, s: &str) -> &Run {
        assert!(self.stderr.contains(s), "stderr lacks {s:?}:\n{}", self.stderr);
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, s: &str) -> &Run {
        assert!(self.stdout.contains(s), "stdout lacks {s:?}:\n{}", self.stdout);
        self
    }
}

pub fn run(mut c: Command) -> Run {
    let Output { status, stdout, stderr } = c.output().unwrap();
    let code = status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    assert!(!stderr.contains("panicked"), "badguys panicked:\n{stderr}");
    Run { code, stdout: String::from_utf8_lossy(&stdout).into_owned(), stderr }
}

/// Whether a test that needs `what` can run. Under CI (`CI=true`) a missing
/// requirement fails the test; elsewhere the test is skipped, saying why.
#[track_caller]
pub fn require(what: &str, available: bool) -> bool {
    if available {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but this test needs {what}, which is missing (scripts/test installs it)");
    }
    eprintln!("SKIPPED: needs {what}");
    false
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether `program` is on PATH (or in /usr/sbin, /sbin).
pub fn have(program: &str) -> bool {
    which(program).is_some()
}

pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The lines of the blocklist.
pub fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

/// A syslog sshd line.
pub fn sshd(pid: u32, msg: &str) -> String {
    format!("Oct  1 14:42:51 gw sshd[{pid}]: {msg}\n")
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A background `badguys watch` (or any command), stopped with SIGTERM
/// when dropped; its stderr goes to a file for assertions.
pub struct Daemon {
    pub child: std::process::Child,
    pub stderr: PathBuf,
}

impl Daemon {
    pub fn spawn(mut c: Command, stderr: PathBuf) -> Daemon {
        let f = std::fs::File::create(&stderr).unwrap();
        let child = c.stdout(std::process::Stdio::null()).stderr(f).spawn().unwrap();
        Daemon { child, stderr }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM, then the exit status (waits up to 10 s).
    pub fn stop(&mut self) -> i32 {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            if std::time::Instant::now() > until {
                let _ = self.child.kill();
                panic!("did not stop within 10 s after SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `cond` every 10 ms until it holds or `secs` pass; returns how long it took.
#[track_caller]
pub fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) -> std::time::Duration {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed().as_secs() < secs, "timed out after {secs}s waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    start.elapsed()
}
