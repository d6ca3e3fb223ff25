//! Length-prefixed frames over TCP (a 24-bit little-endian length, then the frame), the layer
//! under the Noise stream, as `@hyperswarm/secret-stream` frames it.
//!
//! Written here rather than taken from `uint24le_framing` 0.2, which never reports the end of the
//! stream, can stall after a partial read (it returns `Pending` without a waker) and grows its
//! buffer without bound. This one bounds frames, reports end of stream and errors through the
//! connection's [`ConnState`] (the Noise layer above swallows them), and counts the bytes waiting
//! to be written so uploads can wait for a slow reader instead of queueing without limit.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::{Sink, Stream};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Largest frame accepted or sent: the largest block plus room for its proof and headers.
pub const MAX_FRAME: usize = crate::log::MAX_BLOCK_BYTES + 64 * 1024;

/// Uploads wait while more than this many bytes are queued for the socket.
pub const WRITE_HIGH: usize = 4 * 1024 * 1024;

const READ_CHUNK: usize = 64 * 1024;

/// State of one connection shared by its layers and tasks.
#[derive(Debug)]
pub struct ConnState {
    closed: CancellationToken,
    reason: Mutex<Option<String>>,
    unsent: AtomicUsize,
    drained: Notify,
    started: Instant,
    /// Milliseconds since `started` of the last bytes read and written.
    last_read: AtomicU64,
    last_write: AtomicU64,
    /// Set when an empty keepalive message should go out.
    keepalive: AtomicBool,
}

impl ConnState {
    pub fn new(parent: &CancellationToken) -> Arc<Self> {
        Arc::new(ConnState {
            closed: parent.child_token(),
            reason: Mutex::new(None),
            unsent: AtomicUsize::new(0),
            drained: Notify::new(),
            started: Instant::now(),
            last_read: AtomicU64::new(0),
            last_write: AtomicU64::new(0),
            keepalive: AtomicBool::new(false),
        })
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// How long since the peer last sent anything.
    pub fn read_idle(&self) -> Duration {
        Duration::from_millis(
            self.now_ms()
                .saturating_sub(self.last_read.load(Ordering::Relaxed)),
        )
    }

    /// How long since we last sent anything.
    pub fn write_idle(&self) -> Duration {
        Duration::from_millis(
            self.now_ms()
                .saturating_sub(self.last_write.load(Ordering::Relaxed)),
        )
    }

    /// Asks for an empty message to be sent (JS `secret-stream` keepalives are the same).
    pub fn request_keepalive(&self) {
        self.keepalive.store(true, Ordering::Relaxed);
    }

    pub(crate) fn take_keepalive(&self) -> bool {
        self.keepalive.swap(false, Ordering::Relaxed)
    }

    /// Ends the connection; the first reason given is the one reported.
    pub fn fail(&self, reason: impl Into<String>) {
        {
            let mut r = self.reason.lock();
            if r.is_none() {
                *r = Some(reason.into());
            }
        }
        self.closed.cancel();
        self.drained.notify_waiters();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// Resolves once the connection ended (for any reason).
    pub fn closed(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.closed.cancelled()
    }

    pub fn reason(&self) -> Option<String> {
        self.reason.lock().clone()
    }

    /// Bytes handed to the socket layer and not yet written.
    pub fn unsent(&self) -> usize {
        self.unsent.load(Ordering::Relaxed)
    }

    /// Waits until fewer than [`WRITE_HIGH`] bytes are queued (or the connection ended).
    pub async fn writable(&self) {
        loop {
            let notified = self.drained.notified();
            if self.unsent() < WRITE_HIGH || self.is_closed() {
                return;
            }
            notified.await;
        }
    }
}

/// Frames over one TCP stream: a `Stream` of received frames and a `Sink` of frames to send.
pub struct FrameIo {
    stream: TcpStream,
    /// Received bytes live in `rbuf[rstart..rend]`.
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    wbuf: Vec<u8>,
    wstart: usize,
    conn: Arc<ConnState>,
    eof: bool,
}

impl std::fmt::Debug for FrameIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameIo").finish_non_exhaustive()
    }
}

impl FrameIo {
    pub fn new(stream: TcpStream, conn: Arc<ConnState>) -> Self {
        FrameIo {
            stream,
            rbuf: vec![0; 2 * READ_CHUNK],
            rstart: 0,
            rend: 0,
            wbuf: Vec::new(),
            wstart: 0,
            conn,
            eof: false,
        }
    }

    /// The next complete frame in the read buffer, or an error for an oversized one. Makes room
    /// for the rest of an incomplete frame.
    fn next_frame(&mut self) -> Result<Option<Vec<u8>>, String> {
        let avail = &self.rbuf[self.rstart..self.rend];
        let mut need = 3;
        if avail.len() >= 3 {
            let len = avail[0] as usize | (avail[1] as usize) << 8 | (avail[2] as usize) << 16;
            if len > MAX_FRAME {
                return Err(format!(
                    "frame of {len} bytes exceeds the limit of {MAX_FRAME}"
                ));
            }
            if avail.len() >= 3 + len {
                let frame = avail[3..3 + len].to_vec();
                self.rstart += 3 + len;
                if self.rstart == self.rend {
                    self.rstart = 0;
                    self.rend = 0;
                }
                return Ok(Some(frame));
            }
            need = 3 + len;
        }
        // Room for the whole frame and a read chunk after what is buffered.
        if self.rbuf.len() - self.rstart < need + READ_CHUNK {
            self.rbuf.copy_within(self.rstart..self.rend, 0);
            self.rend -= self.rstart;
            self.rstart = 0;
            if self.rbuf.len() < need + READ_CHUNK {
                self.rbuf.resize(need + READ_CHUNK, 0);
            }
        }
        Ok(None)
    }
}

impl Stream for FrameIo {
    type Item = io::Result<Vec<u8>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            match this.next_frame() {
                Ok(Some(frame)) => return Poll::Ready(Some(Ok(frame))),
                Ok(None) => {}
                Err(reason) => {
                    this.conn.fail(reason);
                    this.eof = true;
                }
            }
            if this.eof || this.conn.is_closed() {
                return Poll::Ready(None);
            }
            let mut rb = ReadBuf::new(&mut this.rbuf[this.rend..]);
            let polled = Pin::new(&mut this.stream).poll_read(cx, &mut rb);
            let n = rb.filled().len();
            this.rend += n;
            if n > 0 {
                this.conn
                    .last_read
                    .store(this.conn.now_ms(), Ordering::Relaxed);
            }
            match polled {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) if n == 0 => {
                    let reason = if this.rend == this.rstart {
                        "connection closed by the peer"
                    } else {
                        "connection closed inside a frame"
                    };
                    this.conn.fail(reason);
                    this.eof = true;
                }
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => {
                    this.conn.fail(format!("read failed: {e}"));
                    this.eof = true;
                }
            }
        }
    }
}

impl Sink<Vec<u8>> for FrameIo {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        if self.conn.is_closed() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "connection closed",
            )));
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(mut self: Pin<&mut Self>, frame: Vec<u8>) -> Result<(), io::Error> {
        if frame.len() > MAX_FRAME {
            let msg = format!("refusing to send a frame of {} bytes", frame.len());
            self.conn.fail(msg.clone());
            return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        }
        let len = frame.len() as u32;
        self.wbuf.extend_from_slice(&len.to_le_bytes()[..3]);
        self.wbuf.extend_from_slice(&frame);
        self.conn
            .unsent
            .fetch_add(frame.len() + 3, Ordering::Relaxed);
        Ok(())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        let this = &mut *self;
        while this.wstart < this.wbuf.len() {
            match Pin::new(&mut this.stream).poll_write(cx, &this.wbuf[this.wstart..]) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    this.conn.fail("connection closed while writing");
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "connection closed",
                    )));
                }
                Poll::Ready(Ok(n)) => {
                    this.wstart += n;
                    this.conn
                        .last_write
                        .store(this.conn.now_ms(), Ordering::Relaxed);
                    let before = this.conn.unsent.fetch_sub(n, Ordering::Relaxed);
                    if before >= WRITE_HIGH && before - n < WRITE_HIGH {
                        this.conn.drained.notify_waiters();
                    }
                }
                Poll::Ready(Err(e)) => {
                    this.conn.fail(format!("write failed: {e}"));
                    return Poll::Ready(Err(e));
                }
            }
        }
        this.wbuf.clear();
        this.wstart = 0;
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        match self.as_mut().poll_flush(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut self.stream).poll_shutdown(cx),
            other => other,
        }
    }
}
