//! mDNS discovery, run only inside network namespaces this test creates:
//! - two hosts on one LAN: namespaces `fritter-<pid>-l-a` and `-b` joined by a veth pair, with
//!   169.254.77.1/24 and 169.254.77.2/24 (addresses that exist only inside those namespaces);
//!   one node in each finds the other, then a node that shuts down is dropped by the other
//!   (mDNS goodbye);
//! - two nodes on one host: one namespace with only `lo` up, two nodes in one process find each
//!   other over loopback multicast.
//!
//! mdns-sd joins the mDNS multicast group on every interface of its namespace as soon as it
//! starts, so it never runs in the root namespace here: that would send on the machine's real
//! interface. Each node runs in a child process (this same test binary, started with
//! `ip netns exec`), steered over stdin/stdout. Needs root and `ip`; when the namespaces cannot
//! be created the test says SKIPPED and why, and passes.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use fritter_common::discovery::{Config, Discovery, Source};
use tokio_util::sync::CancellationToken;

const CHILD_ENV: &str = "FRITTER_MDNS_CHILD";
const LISTEN_ENV: &str = "FRITTER_MDNS_LISTEN";
const EXPECT_ENV: &str = "FRITTER_MDNS_EXPECT";
const FIND_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// The child: one or more nodes in the current (namespaced) network.

fn addr_list(var: &str) -> Vec<SocketAddr> {
    std::env::var(var)
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

fn child() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            std::env::var("RUST_LOG").unwrap_or_else(|_| "fritter_common=debug".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let listen = addr_list(LISTEN_ENV);
    let expect = addr_list(EXPECT_ENV);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        // Commands from the parent, one per line.
        let (cmd_tx, mut commands) = tokio::sync::mpsc::channel::<String>(4);
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if cmd_tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
        let cancel = CancellationToken::new();
        let mut nodes = Vec::new();
        for addr in &listen {
            let mut config = Config::offline();
            config.mdns.enabled = true;
            config.lookup_interval_secs = 60;
            nodes.push(Discovery::start(config, *addr, &cancel).await.unwrap());
        }
        // Every node must find every other node (the other listen addresses and `expect`).
        let mut finders = Vec::new();
        for node in &nodes {
            let own = node.listen_addr();
            let mut wanted: HashSet<SocketAddr> = listen
                .iter()
                .chain(expect.iter())
                .copied()
                .filter(|a| *a != own)
                .collect();
            let mut watch = node.watch([9u8; 32]);
            finders.push(async move {
                let deadline = tokio::time::Instant::now() + FIND_TIMEOUT;
                while !wanted.is_empty() {
                    let peer = tokio::time::timeout_at(deadline, watch.next())
                        .await
                        .unwrap_or_else(|_| {
                            panic!("{own}: still missing {wanted:?} after {FIND_TIMEOUT:?}")
                        })
                        .expect("watch ended");
                    eprintln!("{own}: found {} via {:?}", peer.addr, peer.source);
                    assert_eq!(peer.source, Source::Mdns);
                    assert_ne!(peer.addr, own, "own address reported");
                    wanted.remove(&peer.addr);
                }
            });
        }
        for finder in finders {
            finder.await;
        }
        println!("@@FOUND");
        std::io::stdout().flush().unwrap();

        if nodes.len() == 2 {
            // Same host: the first node leaves, the second drops it on the goodbye.
            let second = nodes.pop().unwrap();
            nodes.pop().unwrap().shutdown().await;
            wait_no_lan_peers(&second).await;
            println!("@@GONE");
            second.shutdown().await;
            return;
        }
        while let Some(command) = commands.recv().await {
            match command.as_str() {
                "expect-gone" => {
                    wait_no_lan_peers(&nodes[0]).await;
                    println!("@@GONE");
                    std::io::stdout().flush().unwrap();
                }
                "exit" => break,
                other => panic!("unknown command {other:?}"),
            }
        }
        for node in nodes {
            node.shutdown().await;
        }
    });
}

async fn wait_no_lan_peers(node: &Discovery) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        if node.status().await.mdns.map(|m| m.lan_peers) == Some(0) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "peer not dropped after its goodbye"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The parent: namespaces and child processes.

/// Network namespaces created by this test, deleted on drop (with the veth pair inside them).
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Creates the namespaces (each with `lo` up); `Err` says why they cannot be had here.
fn namespaces(tag: &str, count: usize) -> Result<Namespaces, String> {
    if !cfg!(target_os = "linux") {
        return Err("network namespaces need Linux".into());
    }
    let mut created = Namespaces(Vec::new());
    for i in 0..count {
        let name = format!(
            "fritter-{}-{tag}-{}",
            std::process::id(),
            (b'a' + i as u8) as char
        );
        ip(&["netns", "add", &name])?;
        created.0.push(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
    }
    Ok(created)
}

/// Joins two namespaces with a veth pair addressed 169.254.77.1/24 and .2/24.
fn veth(ns: &Namespaces, tag: &str) -> Result<(), String> {
    let (a, b) = (
        format!("fv{}{tag}a", std::process::id()),
        format!("fv{}{tag}b", std::process::id()),
    );
    ip(&["link", "add", &a, "type", "veth", "peer", "name", &b])?;
    ip(&["link", "set", &a, "netns", &ns.0[0]])?;
    ip(&["link", "set", &b, "netns", &ns.0[1]])?;
    for (dev, n, addr) in [
        (&a, &ns.0[0], "169.254.77.1/24"),
        (&b, &ns.0[1], "169.254.77.2/24"),
    ] {
        ip(&["-n", n, "addr", "add", addr, "dev", dev])?;
        ip(&["-n", n, "link", "set", dev, "up"])?;
    }
    Ok(())
}

/// A node process in a namespace; killed on drop. Its stdout and stderr are kept for failures.
struct Child {
    name: String,
    process: std::process::Child,
    lines: mpsc::Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Child {
    fn spawn(name: &str, ns: &str, test: &str, listen: &str, expect: &str) -> Child {
        let exe = std::env::current_exe().unwrap();
        let mut process = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(exe)
            .args([
                crate::alone::test_name(module_path!(), test).as_str(),
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .env(LISTEN_ENV, listen)
            .env(EXPECT_ENV, expect)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = mpsc::channel();
        let stdout = process.stdout.take().unwrap();
        let stderr = process.stderr.take().unwrap();
        let (log1, log2) = (log.clone(), log.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                log1.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log2.lock().unwrap().push(line);
            }
        });
        Child {
            name: name.to_string(),
            process,
            lines,
            log,
        }
    }

    fn output(&self) -> String {
        format!(
            "--- {} ---\n{}",
            self.name,
            self.log.lock().unwrap().join("\n")
        )
    }

    fn wait_line(&self, want: &str, deadline: Instant) -> Result<(), String> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(want) => return Ok(()),
                Ok(_) => {}
                Err(_) => return Err(format!("{} did not print {want} in time", self.name)),
            }
        }
    }

    fn send(&mut self, command: &str) {
        let stdin = self.process.stdin.as_mut().unwrap();
        let _ = writeln!(stdin, "{command}");
        let _ = stdin.flush();
    }

    fn wait_success(&mut self, deadline: Instant) -> Result<(), String> {
        loop {
            if let Some(status) = self.process.try_wait().map_err(|e| e.to_string())? {
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("{} exited with {status}", self.name))
                };
            }
            if Instant::now() >= deadline {
                return Err(format!("{} did not exit in time", self.name));
            }
            // Polling a child's exit with a deadline; std has no wait with timeout.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn check(children: &[&Child], result: Result<(), String>) {
    if let Err(error) = result {
        let outputs: Vec<String> = children.iter().map(|c| c.output()).collect();
        panic!("{error}\n{}", outputs.join("\n"));
    }
}

#[test]
fn mdns_two_hosts_on_a_lan() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return child();
    }
    let ns = match namespaces("l", 2).and_then(|ns| veth(&ns, "l").map(|()| ns)) {
        Ok(ns) => ns,
        Err(reason) => {
            eprintln!(
                "SKIPPED mdns_two_hosts_on_a_lan: cannot create network namespaces: {reason}"
            );
            return;
        }
    };
    let test = "mdns_two_hosts_on_a_lan";
    let (a_addr, b_addr) = ("169.254.77.1:7101", "169.254.77.2:7102");
    let mut a = Child::spawn("node a", &ns.0[0], test, a_addr, b_addr);
    let mut b = Child::spawn("node b", &ns.0[1], test, b_addr, a_addr);
    let deadline = Instant::now() + Duration::from_secs(40);
    let result = (|| {
        a.wait_line("@@FOUND", deadline)?;
        b.wait_line("@@FOUND", deadline)?;
        a.send("exit");
        a.wait_success(deadline)?;
        b.send("expect-gone");
        b.wait_line("@@GONE", deadline)?;
        b.send("exit");
        b.wait_success(deadline)
    })();
    check(&[&a, &b], result);
}

#[test]
fn mdns_two_nodes_on_one_host() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return child();
    }
    let ns = match namespaces("h", 1) {
        Ok(ns) => ns,
        Err(reason) => {
            eprintln!(
                "SKIPPED mdns_two_nodes_on_one_host: cannot create a network namespace: {reason}"
            );
            return;
        }
    };
    let mut node = Child::spawn(
        "two nodes",
        &ns.0[0],
        "mdns_two_nodes_on_one_host",
        "127.0.0.1:7101,127.0.0.1:7102",
        "",
    );
    let deadline = Instant::now() + Duration::from_secs(40);
    let result = node
        .wait_line("@@FOUND", deadline)
        .and_then(|()| node.wait_line("@@GONE", deadline))
        .and_then(|()| node.wait_success(deadline));
    check(&[&node], result);
}
