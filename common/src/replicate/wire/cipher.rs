//! The Noise stream with the guard on its read side: every decrypted frame passes the guard
//! before `hypercore-protocol` sees it, and a refused frame fails the connection with the reason.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::{Sink, Stream};
use hypercore_handshake::{Cipher, CipherEvent, CipherTrait};

use super::guard::{encode_frames, Guard};
use crate::replicate::frame::ConnState;
/// The Noise stream with the guard on its read side; what `hypercore-protocol` is built on.
pub struct GuardedCipher {
    inner: Cipher,
    guard: Guard,
    ready: VecDeque<Vec<u8>>,
    conn: Arc<ConnState>,
    handshake_done: bool,
}

impl std::fmt::Debug for GuardedCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedCipher")
            .field("handshake_done", &self.handshake_done)
            .field("ready", &self.ready.len())
            .finish_non_exhaustive()
    }
}

impl GuardedCipher {
    pub fn new(inner: Cipher, conn: Arc<ConnState>) -> Self {
        GuardedCipher {
            inner,
            guard: Guard::default(),
            ready: VecDeque::new(),
            conn,
            handshake_done: false,
        }
    }
}

impl Stream for GuardedCipher {
    type Item = CipherEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<CipherEvent>> {
        let this = &mut *self;
        if this.conn.take_keepalive() {
            let mut inner = Pin::new(&mut this.inner);
            if let Poll::Ready(Ok(())) = inner.as_mut().poll_ready(cx) {
                let _ = inner.as_mut().start_send(Vec::new());
                let _ = inner.poll_flush(cx);
            }
        }
        loop {
            if let Some(frame) = this.ready.pop_front() {
                return Poll::Ready(Some(CipherEvent::Message(frame)));
            }
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(CipherEvent::Message(frame))) => {
                    match this
                        .guard
                        .parse_frame(&frame)
                        .and_then(|m| encode_frames(&m))
                    {
                        Ok(frames) => this.ready.extend(frames),
                        Err(e) => {
                            this.conn.fail(e.to_string());
                            return Poll::Ready(Some(CipherEvent::ErrStuff(io::Error::new(
                                io::ErrorKind::InvalidData,
                                e,
                            ))));
                        }
                    }
                }
                Poll::Ready(Some(CipherEvent::ErrStuff(e))) => {
                    this.conn.fail(format!("encryption failed: {e}"));
                    return Poll::Ready(Some(CipherEvent::ErrStuff(e)));
                }
                Poll::Pending => {
                    // `hypercore-protocol` checks for a finished handshake before it reads, so
                    // the read that finishes it (the responder's last handshake message) would
                    // leave the handshake event unsent until the peer sent more. Poll again.
                    if !this.handshake_done && CipherTrait::handshake_hash(&this.inner).is_some() {
                        this.handshake_done = true;
                        cx.waker().wake_by_ref();
                    }
                    return Poll::Pending;
                }
                other => return other,
            }
        }
    }
}

impl Sink<Vec<u8>> for GuardedCipher {
    type Error = io::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Pin::new(&mut self.inner).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Vec<u8>) -> Result<(), io::Error> {
        Pin::new(&mut self.inner).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

impl CipherTrait for GuardedCipher {
    fn remote_public_key(&self) -> Option<[u8; 32]> {
        self.inner.remote_public_key()
    }

    fn local_public_key(&self) -> [u8; 32] {
        CipherTrait::local_public_key(&self.inner)
    }

    fn handshake_hash(&self) -> Option<Vec<u8>> {
        CipherTrait::handshake_hash(&self.inner)
    }

    fn is_initiator(&self) -> bool {
        CipherTrait::is_initiator(&self.inner)
    }
}
