//! A connection's outgoing queue, bounded by messages and by bytes.
//!
//! The core never waits for a socket: whatever it addresses to a connection goes into
//! this queue with a non-blocking push, and a connection whose queue is full is dropped
//! as too slow. Counting messages alone would let one connection that never reads hold
//! `messages x` the largest message (a snapshot chunk is up to 256 KiB), so the bytes
//! waiting are bounded too.
//!
//! The queue is a `VecDeque` of shared frames under a mutex that only the hub (pushing,
//! already under its own lock) and the connection's writer (draining) take. A push is a
//! slot of 16 bytes and no allocation of its own, and it wakes the writer only when the
//! writer is waiting, so a burst of changes costs one wake-up and the writer takes
//! everything queued in one go. (A futures `mpsc` channel, used before, allocated a
//! node per message, about 50 bytes with its frame pointer, and took its atomics per
//! message on both sides; with node clients, which are sent every change, that was
//! 15% of the hub's CPU and most of its memory at the peak of a burst.)

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

use futures::AsyncWrite;

use super::Frame;

/// Most bytes a writer takes from its queue for one write (one frame of any size always).
pub(crate) const BATCH: usize = 256 * 1024;

/// A drained queue keeps at most this many slots of its peak for the next burst.
const KEEP_SLOTS: usize = 1024;

struct State {
    frames: VecDeque<Frame>,
    bytes: usize,
    /// The writer, when it waits for frames.
    waker: Option<Waker>,
    /// Live `Outbox`es; the writer ends once none is left and the queue is empty.
    senders: usize,
    /// Whether the `Inbox` still exists; pushes fail once it is gone.
    open: bool,
}

struct Queue {
    state: Mutex<State>,
    max_messages: usize,
    max_bytes: usize,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The sending side, held by the hub.
pub(crate) struct Outbox {
    queue: Arc<Queue>,
}

/// The receiving side, held by the connection's writer.
pub(crate) struct Inbox {
    queue: Arc<Queue>,
}

/// A queue of at most `messages` messages and `max_bytes` bytes (at least one message
/// of any size fits in an empty queue, so a large snapshot chunk is never refused).
pub(crate) fn channel(messages: usize, max_bytes: usize) -> (Outbox, Inbox) {
    let state = State { frames: VecDeque::new(), bytes: 0, waker: None, senders: 1, open: true };
    let queue = Arc::new(Queue { state: Mutex::new(state), max_messages: messages.max(1), max_bytes });
    (Outbox { queue: Arc::clone(&queue) }, Inbox { queue })
}

impl Outbox {
    /// Queues `frame`; `false` when the queue is full (or its writer is gone).
    pub(crate) fn push(&mut self, frame: Frame) -> bool {
        let waker = {
            let mut state = self.queue.lock();
            let len = frame.len();
            if !state.open
                || state.frames.len() >= self.queue.max_messages
                || (state.bytes > 0 && state.bytes.saturating_add(len) > self.queue.max_bytes)
            {
                return false;
            }
            state.frames.push_back(frame);
            state.bytes += len;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }
}

impl Clone for Outbox {
    fn clone(&self) -> Outbox {
        self.queue.lock().senders += 1;
        Outbox { queue: Arc::clone(&self.queue) }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.queue.lock();
            state.senders -= 1;
            if state.senders > 0 {
                return;
            }
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Inbox {
    /// Waits until something is queued, then moves the queued frames to `out`, in order,
    /// up to [`BATCH`] bytes or [`MAX_SLICES`] frames (at least one frame), for one
    /// vectored write ([`write_frames`]). `false` once every sender is gone and nothing
    /// is left.
    pub(crate) async fn fill(&mut self, out: &mut Vec<Frame>) -> bool {
        poll_fn(|cx| {
            let mut state = self.queue.lock();
            if state.frames.is_empty() {
                if state.senders == 0 {
                    return Poll::Ready(false);
                }
                match &state.waker {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    _ => state.waker = Some(cx.waker().clone()),
                }
                return Poll::Pending;
            }
            let mut taken = 0;
            while let Some(frame) = state.frames.front() {
                if out.len() >= MAX_SLICES || (taken > 0 && taken + frame.len() > BATCH) {
                    break;
                }
                taken += frame.len();
                state.bytes -= frame.len();
                match state.frames.pop_front() {
                    Some(frame) if !frame.is_empty() => out.push(frame),
                    _ => {}
                }
            }
            if state.frames.is_empty() && state.frames.capacity() > KEEP_SLOTS {
                state.frames.shrink_to(KEEP_SLOTS);
            }
            Poll::Ready(true)
        })
        .await
    }
}

/// Most frames sent by one vectored write (Linux's `IOV_MAX` is 1 024).
pub(crate) const MAX_SLICES: usize = 1024;

/// Room for frames a writer keeps between writes.
pub(crate) const IDLE_SLOTS: usize = 64;

/// Writes `frames` in order with vectored writes straight from the shared frames: no
/// copy into a per-connection buffer, which, with a thousand slow readers each holding
/// a full batch, was most of a hub's memory at the peak of a burst.
pub(crate) async fn write_frames<W: AsyncWrite + Unpin>(stream: &mut W, frames: &[Frame]) -> io::Result<()> {
    // The first frame not yet written in full, and how much of it is.
    let (mut first, mut offset) = (0, 0);
    while first < frames.len() {
        // The slices are built on the stack at each poll rather than kept in the future,
        // which lives as long as the connection.
        let written = poll_fn(|cx| {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut count = 0;
            for (slice, frame) in slices.iter_mut().zip(&frames[first..]) {
                let skip = if count == 0 { offset } else { 0 };
                *slice = IoSlice::new(frame.get(skip..).unwrap_or_default());
                count += 1;
            }
            Pin::new(&mut *stream).poll_write_vectored(cx, &slices[..count])
        })
        .await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        offset += written;
        while let Some(frame) = frames.get(first) {
            if offset < frame.len() {
                break;
            }
            offset -= frame.len();
            first += 1;
        }
    }
    Ok(())
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        state.open = false;
        // What is still queued can never be sent: release it now rather than with the
        // last sender.
        state.frames = VecDeque::new();
        state.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use futures::FutureExt;

    use super::*;

    fn frame(len: usize) -> Frame {
        vec![0u8; len].into()
    }

    /// What one `fill` hands the writer, as lengths; `None` when the queue has ended.
    fn filled(inbox: &mut Inbox) -> Option<Vec<usize>> {
        let mut out = Vec::new();
        match inbox.fill(&mut out).now_or_never() {
            Some(true) => Some(out.iter().map(|f| f.len()).collect()),
            Some(false) => None,
            None => Some(Vec::new()),
        }
    }

    #[test]
    fn bounded_by_messages_and_by_bytes() {
        let (mut out, mut inbox) = channel(8, 100);
        assert!(out.push(frame(40)));
        assert!(out.push(frame(40)));
        assert!(!out.push(frame(40)), "over the bytes");
        assert!(out.push(frame(10)));
        assert_eq!(filled(&mut inbox), Some(vec![40, 40, 10]), "everything queued, for one write");
        assert!(out.push(frame(40)), "room again once the writer took it");
        assert_eq!(filled(&mut inbox), Some(vec![40]));
        assert_eq!(filled(&mut inbox), Some(Vec::new()), "nothing queued: the writer waits");

        let (mut out, _inbox) = channel(2, 1000);
        let accepted = (0..10).take_while(|_| out.push(frame(1))).count();
        assert_eq!(accepted, 2, "over the messages");
    }

    #[test]
    fn a_batch_stops_at_its_size_or_its_slices() {
        let (mut out, mut inbox) = channel(4096, usize::MAX);
        for _ in 0..3 {
            assert!(out.push(frame(BATCH / 2)));
        }
        assert_eq!(filled(&mut inbox), Some(vec![BATCH / 2, BATCH / 2]), "two reach the batch size");
        assert_eq!(filled(&mut inbox), Some(vec![BATCH / 2]));
        assert!(out.push(frame(BATCH * 2)));
        assert_eq!(filled(&mut inbox), Some(vec![BATCH * 2]), "one frame of any size");
        for _ in 0..MAX_SLICES + 5 {
            assert!(out.push(frame(1)));
        }
        assert_eq!(filled(&mut inbox).map(|f| f.len()), Some(MAX_SLICES));
        assert_eq!(filled(&mut inbox).map(|f| f.len()), Some(5));
    }

    #[test]
    fn one_message_of_any_size_fits_an_empty_queue() {
        let (mut out, mut inbox) = channel(8, 100);
        assert!(out.push(frame(1000)));
        assert!(!out.push(frame(1)));
        assert_eq!(filled(&mut inbox), Some(vec![1000]));
        assert!(out.push(frame(1000)));
    }

    #[test]
    fn a_closed_writer_refuses_and_holds_nothing() {
        let (mut out, inbox) = channel(8, 100);
        assert!(out.push(frame(10)));
        drop(inbox);
        assert!(!out.push(frame(10)));
        assert_eq!(out.queue.lock().bytes, 0);
        assert!(out.queue.lock().frames.is_empty());
    }

    #[test]
    fn the_writer_wakes_for_a_push_and_ends_with_the_last_sender() {
        let (mut out, mut inbox) = channel(8, 100);
        let second = out.clone();
        let writer = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut frames = Vec::new();
            while block_on(inbox.fill(&mut frames)) {
                got.extend(frames.drain(..).flat_map(|f| f.to_vec()));
            }
            got
        });
        // Whether the writer is already waiting or not, it sees the frame.
        assert!(out.push(vec![7u8; 3].into()));
        drop(out);
        drop(second);
        let got = writer.join().unwrap_or_default();
        assert_eq!(got, vec![7u8; 3], "the queued frame is delivered before the end");
    }

    /// Takes at most `step` bytes per write, to exercise partial vectored writes.
    struct Trickle {
        written: Vec<u8>,
        step: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(mut self: Pin<&mut Self>, _: &mut std::task::Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.step);
            self.written.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(self.step - n);
                self.written.extend_from_slice(&buf[..take]);
                n += take;
                if n == self.step {
                    break;
                }
            }
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut std::task::Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut std::task::Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn vectored_writes_send_every_byte_in_order_across_partial_writes() {
        let frames: Vec<Frame> = (0..MAX_SLICES as u32 + 300)
            .map(|i| (0..(i % 7)).map(|j| (i * 7 + j) as u8).collect::<Vec<u8>>().into())
            .collect();
        let expected: Vec<u8> = frames.iter().flat_map(|f| f.to_vec()).collect();
        for step in [1, 3, 64, 5000, usize::MAX / 2] {
            let mut sink = Trickle { written: Vec::new(), step };
            assert!(block_on(write_frames(&mut sink, &frames)).is_ok());
            assert_eq!(sink.written, expected, "step {step}");
        }
    }
}
