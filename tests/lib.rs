//! Helpers for end-to-end tests: build and find the real `fritter` binary, run it with a data
//! directory of its own, and show everything it printed when an assertion about it fails.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{OnceLock, PoisonError, RwLock};

use serde_json::Value;
use tempfile::TempDir;

/// The `fritter` binary, built once per test run with the same profile as the tests.
///
/// It belongs to another package, so `cargo test -p fritter-tests` does not build it; this runs
/// `cargo build -p fritter-app --bin fritter` from the workspace root into the same target
/// directory and returns the path of the result.
pub fn fritter_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // This test binary lives in <target>/<profile>/deps/.
        let exe = std::env::current_exe().expect("the test binary knows its path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("tests run from <target>/<profile>/deps");
        let target_dir = profile_dir
            .parent()
            .expect("a profile directory has a parent");
        let profile = profile_dir
            .file_name()
            .and_then(OsStr::to_str)
            .expect("a UTF-8 profile name");
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("tests/ is in the workspace");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let mut build = Command::new(cargo);
        build.current_dir(workspace).args([
            "build",
            "--quiet",
            "-p",
            "fritter-app",
            "--bin",
            "fritter",
        ]);
        build.env("CARGO_TARGET_DIR", target_dir);
        match profile {
            "debug" => {}
            "release" => {
                build.arg("--release");
            }
            other => {
                build.args(["--profile", other]);
            }
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building fritter failed: {status}");
        let bin = profile_dir.join("fritter");
        assert!(bin.exists(), "{} was not built", bin.display());
        bin
    })
}

/// One user's data directory, used by every command run through it.
pub struct Fritter {
    dir: TempDir,
}

impl std::fmt::Debug for Fritter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fritter").finish_non_exhaustive()
    }
}

impl Default for Fritter {
    fn default() -> Self {
        Fritter::new()
    }
}

impl Fritter {
    /// A fresh, empty data directory.
    pub fn new() -> Fritter {
        Fritter {
            dir: tempfile::tempdir().expect("a temp dir"),
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `fritter --data-dir <dir> <args>` and captures what it printed.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(fritter_bin());
        cmd.arg("--data-dir").arg(self.data_dir()).args(args);
        // The environment must not point the binary elsewhere or make it chatty.
        cmd.env_remove("FRITTER_DATA_DIR").env_remove("RUST_LOG");
        let output = cmd_output(&mut cmd);
        Run::new(&cmd, output)
    }

    /// Runs with `--json` and expects success and one JSON value on stdout.
    pub fn json<I, S>(&self, args: I) -> Value
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<std::ffi::OsString> = std::iter::once("--json".into())
            .chain(args.into_iter().map(|a| a.as_ref().to_owned()))
            .collect();
        self.run(args).success().json()
    }

    /// Makes `other`'s archive held locally here, as replication will: a copy of its log files.
    pub fn hold_copy_of(&self, other: &Fritter) {
        let key = other.key();
        let from = other.data_dir().join("archives").join(&key);
        let to = self.data_dir().join("archives").join(&key);
        std::fs::create_dir_all(&to).expect("create the archive directory");
        for name in ["tree", "data", "bitfield"] {
            if from.join(name).exists() {
                std::fs::copy(from.join(name), to.join(name)).expect("copy an archive file");
            }
        }
    }

    /// The hex key of this data directory's own archive.
    pub fn key(&self) -> String {
        let url = self.json(["url"]);
        let url = url["url"].as_str().expect("url prints the url");
        url.trim_start_matches("hyper://")
            .trim_end_matches('/')
            .to_owned()
    }

    /// `fritter init --name NAME` and the archive URL it created.
    pub fn init(&self, name: &str) -> String {
        let created = self.json(["init", "--name", name]);
        created["url"]
            .as_str()
            .expect("init prints the url")
            .to_owned()
    }
}

fn cmd_output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    spawn(cmd)
        .and_then(|child| child.wait_with_output())
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Forking copies every open file of this process into the child until the child execs,
/// including an archive's `LOCK` with its flock: a test that holds an archive lock in-process
/// while another test starts a process would lend that lock to the child for a moment, and a
/// writer started just then would find its archive "in use". So processes start through
/// [`spawn`], which excludes [`holding_locks`].
static FORK_GATE: RwLock<()> = RwLock::new(());

/// Starts `cmd` while no test of this process holds an archive lock (see [`FORK_GATE`]).
/// `Command::spawn` returns once the child has exec'd, so the child keeps nothing of ours.
pub fn spawn(cmd: &mut Command) -> std::io::Result<Child> {
    let _gate = FORK_GATE.write().unwrap_or_else(PoisonError::into_inner);
    cmd.spawn()
}

/// Runs `f`, which may take archive locks in this process, while no process is being started.
/// `f` must release them before it returns, and must not start processes itself.
pub fn holding_locks<T>(f: impl FnOnce() -> T) -> T {
    let _gate = FORK_GATE.read().unwrap_or_else(PoisonError::into_inner);
    f()
}

/// What one run of a binary did. If the test panics while this is alive (a failed assertion
/// about it, say), its command line and output are printed.
pub struct Run {
    pub command: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run").finish_non_exhaustive()
    }
}

impl Run {
    pub fn new(cmd: &Command, output: Output) -> Run {
        Run {
            command: format!("{cmd:?}"),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics unless `ok`; the run is shown as it is dropped during the panic.
    #[track_caller]
    pub fn check(&self, ok: bool, what: &str) {
        if !ok {
            panic!("{what}; the run follows");
        }
    }

    /// Expects exit code 0.
    #[track_caller]
    pub fn success(self) -> Run {
        self.check(self.code == Some(0), "expected success");
        self
    }

    /// Expects exit code `code` and a message starting with `error:` that contains `fragment`.
    #[track_caller]
    pub fn fails(self, code: i32, fragment: &str) -> Run {
        self.check(
            self.code == Some(code),
            &format!("expected exit code {code}"),
        );
        self.check(
            self.stderr.starts_with("error:"),
            "expected stderr to start with `error:`",
        );
        self.check(
            self.stderr.contains(fragment),
            &format!("expected stderr to contain {fragment:?}"),
        );
        self
    }

    /// Expects `fragment` on stdout.
    #[track_caller]
    pub fn stdout_has(self, fragment: &str) -> Run {
        self.check(
            self.stdout.contains(fragment),
            &format!("expected stdout to contain {fragment:?}"),
        );
        self
    }

    /// Expects `fragment` on stderr.
    #[track_caller]
    pub fn stderr_has(self, fragment: &str) -> Run {
        self.check(
            self.stderr.contains(fragment),
            &format!("expected stderr to contain {fragment:?}"),
        );
        self
    }

    /// Stdout parsed as exactly one JSON value.
    #[track_caller]
    pub fn json(&self) -> Value {
        match serde_json::from_str(&self.stdout) {
            Ok(value) => value,
            Err(e) => panic!("stdout is not one JSON value: {e}; the run follows"),
        }
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "--- command: {}", self.command)?;
        writeln!(f, "--- exit code: {:?}", self.code)?;
        writeln!(f, "--- stdout:\n{}", self.stdout)?;
        write!(f, "--- stderr:\n{}", self.stderr)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{self}");
        }
    }
}

/// A `fritter` process left running (`fritter sync`, `fritter serve`): killed when dropped, its
/// output kept in files and printed if the test fails meanwhile.
pub struct Daemon {
    child: Child,
    logs: TempDir,
    pub command: String,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon").finish_non_exhaustive()
    }
}

impl Fritter {
    /// Starts `fritter --data-dir <dir> <args>` in the background.
    pub fn start<I, S>(&self, args: I) -> Daemon
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(fritter_bin());
        cmd.arg("--data-dir").arg(self.data_dir()).args(args);
        cmd.env_remove("FRITTER_DATA_DIR");
        Daemon::start(cmd)
    }
}

impl Daemon {
    /// Starts `cmd` with `RUST_LOG=info`, its output going to files.
    pub fn start(mut cmd: Command) -> Daemon {
        let logs = tempfile::tempdir().expect("a temp dir for logs");
        cmd.env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(logs.path().join("stdout")).expect("log file"))
            .stderr(std::fs::File::create(logs.path().join("stderr")).expect("log file"));
        let child = spawn(&mut cmd).unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Daemon {
            child,
            logs,
            command: format!("{cmd:?}"),
        }
    }

    /// Whether the process has exited (and how).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.logs.path().join("stderr")).unwrap_or_default()
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.logs.path().join("stdout")).unwrap_or_default()
    }

    /// Waits until `cond` holds (checked every 50 ms), or panics after `secs` with the output.
    #[track_caller]
    pub fn wait_until(&mut self, secs: u64, what: &str, mut cond: impl FnMut(&Daemon) -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if cond(self) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) while waiting for {what}",
                    self.command
                );
            }
            if std::time::Instant::now() > deadline {
                panic!("{what} did not happen within {secs} s");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        // SAFETY: kill only sends a signal to our own child.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        self.child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- daemon: {}\n--- stdout:\n{}\n--- stderr:\n{}",
                self.command,
                self.stdout(),
                self.stderr()
            );
        }
    }
}

/// The `fritter-crawler` binary, built once per test run like [`fritter_bin`].
pub fn crawler_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let fritter = fritter_bin();
        let profile_dir = fritter.parent().expect("a profile directory");
        let target_dir = profile_dir.parent().expect("a target directory");
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("tests/ is in the workspace");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let mut build = Command::new(cargo);
        build.current_dir(workspace).args([
            "build",
            "--quiet",
            "-p",
            "fritter-crawler",
            "--bin",
            "fritter-crawler",
        ]);
        build.env("CARGO_TARGET_DIR", target_dir);
        match profile_dir.file_name().and_then(OsStr::to_str) {
            Some("debug") | None => {}
            Some("release") => {
                build.arg("--release");
            }
            Some(other) => {
                build.args(["--profile", other]);
            }
        }
        let status = build.status().expect("cargo runs");
        assert!(
            status.success(),
            "building fritter-crawler failed: {status}"
        );
        let bin = profile_dir.join("fritter-crawler");
        assert!(bin.exists(), "{} was not built", bin.display());
        bin
    })
}

/// A running `fritter-crawler` (serving): a [`Daemon`] plus the HTTP address it printed.
pub struct CrawlerProcess {
    daemon: Daemon,
    /// `http://127.0.0.1:PORT`, as the crawler printed it.
    pub base: String,
}

impl std::fmt::Debug for CrawlerProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrawlerProcess").finish_non_exhaustive()
    }
}

impl CrawlerProcess {
    /// Starts `fritter-crawler --data-dir <dir> --http 127.0.0.1:0 --listen 127.0.0.1:0 --no-dht
    /// --no-mdns <args>` and waits for it to print its HTTP address.
    pub fn start<I, S>(data_dir: &Path, args: I) -> CrawlerProcess
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(crawler_bin());
        cmd.arg("--data-dir")
            .arg(data_dir)
            .args(["--http", "127.0.0.1:0", "--listen", "127.0.0.1:0"])
            // Tests never reach the internet: no public DHT, no LAN multicast.
            .args(["--no-dht", "--no-mdns"])
            .args(args)
            .env_remove("FRITTER_CRAWLER_DATA_DIR");
        let mut daemon = Daemon::start(cmd);
        let mut base = String::new();
        daemon.wait_until(60, "the crawler to serve", |d| {
            match d.stdout().split("HTTP API on http://").nth(1) {
                Some(rest) => {
                    base = format!("http://{}", rest.split('/').next().unwrap_or_default());
                    true
                }
                None => false,
            }
        });
        CrawlerProcess { daemon, base }
    }
}

impl std::ops::Deref for CrawlerProcess {
    type Target = Daemon;
    fn deref(&self) -> &Daemon {
        &self.daemon
    }
}

impl std::ops::DerefMut for CrawlerProcess {
    fn deref_mut(&mut self) -> &mut Daemon {
        &mut self.daemon
    }
}

/// What the browser tests need: node with `playwright-core` from `tests/js`, and Debian's
/// Chromium (`$FRITTER_CHROMIUM` overrides the path).
pub mod browser {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// `tests/js`, where the browser scripts and their `node_modules` are.
    pub fn js_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
    }

    pub fn chromium() -> PathBuf {
        std::env::var_os("FRITTER_CHROMIUM")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
    }

    /// Whether the browser test `name` can run here. Under CI a missing part fails the test;
    /// elsewhere the test is skipped with a note saying what to install.
    pub fn available(name: &str) -> bool {
        let node = Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        let why = if !node {
            "`node` is not installed"
        } else if !js_dir()
            .join("node_modules/playwright-core/package.json")
            .exists()
        {
            "tests/js/node_modules/playwright-core is missing (run `npm ci --prefix tests/js`)"
        } else if !chromium().exists() {
            "Chromium is missing (apt-get install chromium)"
        } else {
            return true;
        };
        if std::env::var_os("CI").is_some() {
            panic!("the {name} cannot run in CI: {why}");
        }
        eprintln!("note: skipping the {name}: {why}");
        false
    }
}
