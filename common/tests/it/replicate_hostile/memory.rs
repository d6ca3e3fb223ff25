//! The memory a hostile peer costs the node, measured with a counting allocator. The allocator
//! is the process's (every test of this binary allocates through it) but counts only threads
//! that opted in: the node's runtime in this test, so tests running beside it do not count.

use super::*;

// ---------------------------------------------------------------------------------------------
// A counting allocator: live bytes allocated by threads that opted in (the node's runtime in the
// memory test), and their peak. Other threads pass straight through.

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);
static COUNTED_THREADS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn counted() -> bool {
    COUNTED_THREADS.load(Ordering::Relaxed) > 0 && COUNTED.try_with(Cell::get).unwrap_or(false)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() && counted() {
            let live =
                LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed) + layout.size() as isize;
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if counted() {
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() && counted() {
            let d = new_size as isize - layout.size() as isize;
            let live = LIVE.fetch_add(d, Ordering::Relaxed) + d;
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peers that attack at once in the memory test.
const MEMORY_PEERS: usize = 18;

/// A data message with a block value of `len` bytes, as large as a frame may be, whose node
/// count then lies (2^40): the guard reads the whole frame before it refuses it.
fn big_data_frame(len: usize, rng: &mut Rng) -> Vec<u8> {
    let mut f = vec![1u8, 3, 1, 1, 1, 3];
    uint(&mut f, len as u64);
    f.extend(std::iter::repeat_n(rng.next() as u8, len));
    f.push(0xff);
    f.extend((1u64 << 40).to_le_bytes());
    f
}

/// The node runs on its own runtime whose threads are counted; the hostile peers run on another.
/// Each peer floods requests, floods ranges, or sends the largest frames the node accepts.
#[test]
fn memory_per_hostile_peer_is_bounded() {
    let world = Arc::new(build_world());
    let node_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(|| COUNTED.with(|c| c.set(true)))
        .on_thread_stop(|| COUNTED.with(|c| c.set(false)))
        .build()
        .expect("runtime");
    let peer_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    COUNTED_THREADS.fetch_add(1, Ordering::SeqCst);
    let node = node_rt.block_on(async {
        let node = listening_node().await;
        node.add(world.replica.clone());
        node
    });
    let addr = node.local_addr().expect("addr");
    // Let the runtime settle, then measure from here.
    std::thread::sleep(Duration::from_millis(200));
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let frame_len = std::env::var("FRITTER_MEMORY_FRAME")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(fritter_common::replicate::frame::MAX_FRAME - 64 * 1024);

    peer_rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..MEMORY_PEERS {
            let world = world.clone();
            let mut rng = Rng(i as u64);
            set.spawn(async move {
                let kinds = std::env::var("FRITTER_MEMORY_KINDS").unwrap_or_else(|_| "012".into());
                let kinds = kinds.as_bytes();
                match kinds[i % kinds.len()] - b'0' {
                    0 => {
                        fake_writer(
                            addr,
                            world,
                            (1, 20, Src::Honest, keep, Some(requests_flood)),
                            rng,
                        )
                        .await
                    }
                    1 => {
                        fake_writer(
                            addr,
                            world,
                            (1, 20, Src::Honest, keep, Some(ranges_flood)),
                            rng,
                        )
                        .await
                    }
                    _ => {
                        let frames = vec![big_data_frame(frame_len, &mut rng)];
                        fake_raw(addr, frames).await
                    }
                }
            });
        }
        within(60, "every hostile peer to be dropped", async {
            while set.join_next().await.is_some() {}
        })
        .await;
    });
    let peak = PEAK.load(Ordering::SeqCst) - base;
    // The fakes see the socket close a moment before the node records why.
    peer_rt.block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while node.disconnects().len() < MEMORY_PEERS && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let faults = node.disconnects().iter().filter(|d| d.fault).count();
    COUNTED_THREADS.fetch_sub(1, Ordering::SeqCst);
    let per_peer = peak as f64 / MEMORY_PEERS as f64 / (1024.0 * 1024.0);
    eprintln!(
        "peak {:.1} MiB above the idle node with {MEMORY_PEERS} hostile peers: {per_peer:.2} MiB per peer ({faults} dropped as faulty)",
        peak as f64 / (1024.0 * 1024.0)
    );
    assert_eq!(
        faults,
        MEMORY_PEERS,
        "every hostile peer dropped as faulty: {:?}",
        node.disconnects()
    );
    assert!(per_peer < 16.0, "{per_peer:.2} MiB per hostile peer");
    node_rt.block_on(node.shutdown());
}
