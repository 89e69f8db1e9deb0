//! A connection's outgoing queue, bounded by messages and by bytes.
//!
//! The core never waits for a socket: whatever it addresses to a connection goes into
//! this queue with a non-blocking push, and a connection whose queue is full is dropped
//! as too slow. Counting messages alone would let one connection that never reads hold
//! `messages x` the largest message (a snapshot chunk is up to 256 KiB), so the bytes
//! waiting are bounded too.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::channel::mpsc;
use futures::StreamExt;

use super::Frame;

/// How many bytes a writer gathers from its queue for one write.
pub(crate) const BATCH: usize = 256 * 1024;

/// The sending side, held by the hub.
#[derive(Clone)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<Frame>,
    bytes: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// The receiving side, held by the connection's writer.
pub(crate) struct Inbox {
    rx: mpsc::Receiver<Frame>,
    bytes: Arc<AtomicUsize>,
}

/// A queue of at most `messages` messages and `max_bytes` bytes (at least one message
/// of any size fits in an empty queue, so a large snapshot chunk is never refused).
pub(crate) fn channel(messages: usize, max_bytes: usize) -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::channel(messages.max(1));
    let bytes = Arc::new(AtomicUsize::new(0));
    (Outbox { tx, bytes: Arc::clone(&bytes), max_bytes }, Inbox { rx, bytes })
}

impl Outbox {
    /// Queues `frame`; `false` when the queue is full (or its writer is gone).
    pub(crate) fn push(&mut self, frame: Frame) -> bool {
        let len = frame.len();
        let queued = self.bytes.load(Ordering::Acquire);
        if queued > 0 && queued.saturating_add(len) > self.max_bytes {
            return false;
        }
        self.bytes.fetch_add(len, Ordering::AcqRel);
        if self.tx.try_send(frame).is_err() {
            self.bytes.fetch_sub(len, Ordering::AcqRel);
            return false;
        }
        true
    }
}

impl Inbox {
    /// The next frame, waiting for one; `None` once every sender is gone.
    pub(crate) async fn next(&mut self) -> Option<Frame> {
        let frame = self.rx.next().await?;
        self.bytes.fetch_sub(frame.len(), Ordering::AcqRel);
        Some(frame)
    }

    /// The next frame if one is queued.
    pub(crate) fn try_next(&mut self) -> Option<Frame> {
        let frame = self.rx.try_recv().ok()?;
        self.bytes.fetch_sub(frame.len(), Ordering::AcqRel);
        Some(frame)
    }

    /// Appends whatever else is queued to `buf`, up to about [`BATCH`] bytes, so that a
    /// writer sends it in one write.
    pub(crate) fn append_queued(&mut self, buf: &mut Vec<u8>) {
        while buf.len() < BATCH {
            match self.try_next() {
                Some(frame) => buf.extend_from_slice(&frame),
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize) -> Frame {
        vec![0u8; len].into()
    }

    #[test]
    fn bounded_by_messages_and_by_bytes() {
        let (mut out, mut inbox) = channel(8, 100);
        assert!(out.push(frame(40)));
        assert!(out.push(frame(40)));
        assert!(!out.push(frame(40)), "over the bytes");
        assert!(out.push(frame(10)));
        assert_eq!(inbox.try_next().map(|f| f.len()), Some(40));
        assert!(out.push(frame(40)), "room again once the writer took one");
        assert_eq!(futures::executor::block_on(inbox.next()).map(|f| f.len()), Some(40));
        let mut buf = Vec::new();
        inbox.append_queued(&mut buf);
        assert_eq!(buf.len(), 10 + 40, "the rest, in queue order, for one write");
        assert!(inbox.try_next().is_none());

        // futures' channel holds its buffer plus one message per sender.
        let (mut out, _inbox) = channel(2, 1000);
        let accepted = (0..10).take_while(|_| out.push(frame(1))).count();
        assert_eq!(accepted, 3, "over the messages");
    }

    #[test]
    fn one_message_of_any_size_fits_an_empty_queue() {
        let (mut out, mut inbox) = channel(8, 100);
        assert!(out.push(frame(1000)));
        assert!(!out.push(frame(1)));
        assert!(inbox.try_next().is_some());
        assert!(out.push(frame(1000)));
    }

    #[test]
    fn a_closed_writer_refuses_and_counts_nothing() {
        let (mut out, inbox) = channel(8, 100);
        drop(inbox);
        assert!(!out.push(frame(10)));
        assert_eq!(out.bytes.load(Ordering::Acquire), 0);
    }
}
