//! What the log benchmark asks of the machine: the file system, the page cache, the load, the
//! raw fsync latency, and waiting for an idle machine before a round.

use super::*;

/// Drops the files' pages from the page cache (they are synced, so this evicts them).
pub(crate) fn evict(dir: &Path) {
    use std::os::unix::io::AsRawFd;
    for f in ["tree", "data", "bitfield"] {
        if let Ok(file) = fs::File::open(dir.join(f)) {
            unsafe {
                libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
            }
        }
    }
}

pub(crate) fn fs_type(dir: &Path) -> String {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(dir.as_os_str().as_bytes()).expect("path");
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut s) } != 0 {
        return "unknown".into();
    }
    match s.f_type as i64 {
        0xEF53 => "ext4".into(),
        0x0102_1994 => "tmpfs (!)".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x794C_7630 => "overlayfs".into(),
        other => format!("0x{other:x}"),
    }
}

pub(crate) fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// p50 of 4 KiB `pwrite` + `fdatasync` on the bench disk: how expensive durability is right now.
pub(crate) fn fsync_probe(cfg: &Cfg) -> f64 {
    use std::os::unix::fs::FileExt;
    let dir = fresh_dir(cfg, "probe");
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.path().join("probe"))
        .expect("probe file");
    let buf = [7u8; 4096];
    let n = if cfg.quick { 50 } else { 200 };
    let mut t = Vec::with_capacity(n);
    for i in 0..n {
        let t0 = Instant::now();
        f.write_all_at(&buf, (i * 4096) as u64)
            .expect("probe write");
        f.sync_data().expect("probe sync");
        t.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    median(t).unwrap_or(f64::NAN)
}

/// CPU time of the whole machine, busy and total, in clock ticks.
pub(crate) fn cpu_ticks() -> (u64, u64) {
    let s = fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return (0, 0);
    }
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v[4];
    (total - idle, total)
}

/// With `--wait-idle S`, waits up to S seconds for the machine to be idle (under 10% busy over
/// two seconds) so other work on a shared machine does not skew the round.
pub(crate) fn wait_idle(cfg: &Cfg) {
    if cfg.wait_idle <= 0.0 {
        return;
    }
    let start = Instant::now();
    loop {
        let (b0, t0) = cpu_ticks();
        std::thread::sleep(Duration::from_secs(2));
        let (b1, t1) = cpu_ticks();
        let busy = (b1 - b0) as f64 / (t1 - t0).max(1) as f64;
        if busy < 0.10 {
            return;
        }
        if start.elapsed().as_secs_f64() > cfg.wait_idle {
            println!(
                "  machine still {:.0}% busy after waiting {:.0}s; going ahead",
                busy * 100.0,
                cfg.wait_idle
            );
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// the JS reference
