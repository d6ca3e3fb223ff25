//! The serving half of a replicator: the peer's requests answered from the log in batches on a
//! blocking thread, and the answers sent in frames of bounded size.

use std::sync::atomic::Ordering;

use hypercore_protocol::schema::{NoData, Request};
use hypercore_protocol::Message;

use super::{Replicator, ServeJob, Stop};
use crate::replicate::wire::{approx_size, proof_to_data, request_to_log};

/// Bytes of answers per frame.
const FRAME_BUDGET: usize = 256 * 1024;

/// Requests of the peer answered per blocking job, and the block bytes one job may read.
const SERVE_BATCH: usize = 2048;
const SERVE_BYTES: usize = 4 * 1024 * 1024;

impl Replicator {
    /// Answers up to [`SERVE_BATCH`] of the peer's requests from the log, in order, on a
    /// blocking thread; stops early once [`SERVE_BYTES`] of blocks were read.
    pub(super) fn start_serve(&mut self) -> ServeJob {
        let n = self.requests.len().min(SERVE_BATCH);
        let requests: Vec<Request> = self.requests.drain(..n).collect();
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || {
            let fork = log.head().fork;
            let mut out = Vec::with_capacity(requests.len());
            let mut bytes = 0;
            let mut rest = requests.into_iter();
            while bytes < SERVE_BYTES {
                let chunk: Vec<Request> = rest.by_ref().take(64).collect();
                if chunk.is_empty() {
                    break;
                }
                // Requests for another fork, or for nothing, are refused; the rest answered at once.
                let valid = |r: &Request| {
                    r.fork == fork
                        && (r.block.is_some()
                            || r.hash.is_some()
                            || r.seek.is_some()
                            || r.upgrade.is_some())
                };
                let asks: Vec<_> = chunk
                    .iter()
                    .filter(|r| valid(r))
                    .map(request_to_log)
                    .collect();
                let mut proofs = log.proofs(&asks).into_iter();
                for r in &chunk {
                    let answer = if valid(r) { proofs.next() } else { None };
                    out.push(match answer {
                        Some(Ok(p)) => {
                            bytes += p.block.as_ref().map_or(0, |b| b.value.len());
                            Message::Data(proof_to_data(r.id, p))
                        }
                        Some(Err(e)) => {
                            tracing::debug!(request = r.id, error = %e, "cannot answer a request");
                            Message::NoData(NoData { request: r.id })
                        }
                        None => Message::NoData(NoData { request: r.id }),
                    });
                }
            }
            (out, rest.collect())
        })
    }

    /// Sends answers in frames of about [`FRAME_BUDGET`] bytes.
    pub(super) async fn send_answers(&mut self, answers: Vec<Message>) -> Result<(), Stop> {
        let served = answers
            .iter()
            .filter(|m| matches!(m, Message::Data(d) if d.block.is_some()))
            .count();
        self.archive
            .counters
            .uploaded
            .fetch_add(served as u64, Ordering::Relaxed);
        let mut chunk = Vec::new();
        let mut size = 0;
        for m in answers {
            size += approx_size(&m);
            chunk.push(m);
            if size >= FRAME_BUDGET {
                self.send(std::mem::take(&mut chunk)).await?;
                size = 0;
            }
        }
        self.send(chunk).await
    }
}
