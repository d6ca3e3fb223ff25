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
