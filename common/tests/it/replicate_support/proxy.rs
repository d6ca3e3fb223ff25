//! A TCP proxy on 127.0.0.1 for fault tests: forwards every connection to one upstream address,
//! and can cut a connection after a given number of bytes from upstream, or black-hole all
//! traffic (hold it, forward nothing) until healed. Plain threads and std sockets, so it runs
//! beside any runtime and never shares its scheduler with the nodes under test.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) struct Proxy {
    pub(crate) addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    upstream: SocketAddr,
    /// Cut each connection after this many bytes from upstream (u64::MAX: never).
    cut_after: AtomicU64,
    blocked: AtomicBool,
    stop: AtomicBool,
    /// Bytes forwarded from upstream, over all connections.
    down: AtomicU64,
    cuts: AtomicU64,
    socks: Mutex<Vec<TcpStream>>,
}

impl Proxy {
    pub(crate) fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let shared = Arc::new(Shared {
            upstream,
            cut_after: AtomicU64::new(u64::MAX),
            blocked: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            down: AtomicU64::new(0),
            cuts: AtomicU64::new(0),
            socks: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            while !s.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let Ok(server) = TcpStream::connect(s.upstream) else {
                            continue;
                        };
                        let budget = Arc::new(AtomicU64::new(s.cut_after.load(Ordering::SeqCst)));
                        for (from, to, down) in [
                            (client.try_clone(), server.try_clone(), false),
                            (server.try_clone(), client.try_clone(), true),
                        ] {
                            let (Ok(from), Ok(to)) = (from, to) else {
                                continue;
                            };
                            let s = s.clone();
                            let budget = budget.clone();
                            std::thread::spawn(move || pump(from, to, down, &s, &budget));
                        }
                        let mut socks = s.socks.lock().expect("lock");
                        socks.push(client);
                        socks.push(server);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Proxy { addr, shared }
    }

    /// Cut every new connection once it has carried `bytes` bytes from upstream.
    pub(crate) fn cut_after(&self, bytes: u64) {
        self.shared.cut_after.store(bytes, Ordering::SeqCst);
    }

    pub(crate) fn cuts(&self) -> u64 {
        self.shared.cuts.load(Ordering::SeqCst)
    }

    /// Stops forwarding in both directions; connections stay open.
    pub(crate) fn block(&self) {
        self.shared.blocked.store(true, Ordering::SeqCst);
    }

    pub(crate) fn heal(&self) {
        self.shared.blocked.store(false, Ordering::SeqCst);
    }

    /// Closes every connection through the proxy.
    pub(crate) fn reset(&self) {
        for s in self.shared.socks.lock().expect("lock").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.reset();
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, down: bool, s: &Shared, budget: &AtomicU64) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(20)));
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if s.stop.load(Ordering::SeqCst) {
            break;
        }
        if s.blocked.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => break,
        };
        let mut n = n as u64;
        let mut cut = false;
        if down {
            let left = budget.load(Ordering::SeqCst);
            if n >= left {
                n = left;
                cut = true;
            }
            budget.store(left - n, Ordering::SeqCst);
            s.down.fetch_add(n, Ordering::SeqCst);
        }
        if to.write_all(&buf[..n as usize]).is_err() {
            break;
        }
        if cut {
            s.cuts.fetch_add(1, Ordering::SeqCst);
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
