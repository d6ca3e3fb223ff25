//! Running one test in a process of its own. The tests of this binary share a process, so a
//! test that counts the process's open descriptors or threads would also count those of the
//! tests running beside it; such a test runs its body in a child process of this same binary
//! started with libtest's `--exact` filter, where it is the only test.

use std::process::Command;

/// Set in the child: the test whose name was given runs its body there.
const ALONE_ENV: &str = "FRITTER_IT_ALONE";

/// The name libtest gives the test function `name` of module `module` (`module_path!()`): the
/// path without this binary's crate name.
pub(crate) fn test_name(module: &str, name: &str) -> String {
    match module.split_once("::") {
        Some((_crate, path)) => format!("{path}::{name}"),
        None => name.to_string(),
    }
}

/// True in the child process: the caller runs the test's body. In the parent, runs test `name`
/// of `module` (`module_path!()`) alone in a child process, fails if it failed or did not run,
/// and returns false: the caller returns at once.
pub(crate) fn in_own_process(module: &str, name: &str) -> bool {
    if std::env::var_os(ALONE_ENV).is_some() {
        return true;
    }
    let test = test_name(module, name);
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(&exe)
        .args([test.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(ALONE_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{test} failed in its own process ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // A renamed test would match nothing and "pass": make sure it ran.
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "{test} did not run in its own process ({}):\n{stdout}\n{stderr}",
        exe.display()
    );
    false
}
