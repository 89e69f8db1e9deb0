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
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

use futures::{AsyncWrite, AsyncWriteExt};

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
    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.lock().frames.is_empty()
    }

    /// Waits until something is queued, then moves the queued frames to `out`, in order,
    /// up to [`BATCH`] bytes or [`MAX_FRAMES`] frames (at least one frame), for one write.
    /// `false` once every sender is gone and nothing is left.
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
                if out.len() >= MAX_FRAMES || (taken > 0 && taken + frame.len() > BATCH) {
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

/// Most frames a writer takes from its queue for one write.
pub(crate) const MAX_FRAMES: usize = 1024;

/// Room a writer keeps between writes, for frames and bytes, once its queue is empty.
pub(crate) const IDLE_FRAMES: usize = 64;
const IDLE_BYTES: usize = 16 * 1024;

/// A connection's writer: takes what is queued and sends it in large writes.
pub(crate) struct Writer {
    inbox: Inbox,
    frames: Vec<Frame>,
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(inbox: Inbox) -> Writer {
        Writer { inbox, frames: Vec::new(), buf: Vec::new() }
    }

    /// Waits until something is queued and takes it (see [`Inbox::fill`]); the frames
    /// wait in `self` for [`write`](Self::write). `false` once every sender is gone and
    /// nothing is left.
    pub(crate) async fn take(&mut self) -> bool {
        self.inbox.fill(&mut self.frames).await
    }

    /// Queues `frame` for the next write, after what was taken (a heartbeat).
    pub(crate) fn add(&mut self, frame: Frame) {
        self.frames.push(frame);
    }

    /// Sends what was taken in one write: copied into one buffer first, which costs far
    /// less than a vectored write of many small frames (on loopback, half the hub's CPU
    /// with node clients, who are sent every change as a line of a hundred bytes or so).
    /// Once the queue is empty, the buffer goes: an idle connection holds no batch.
    pub(crate) async fn write<W: AsyncWrite + Unpin>(&mut self, stream: &mut W) -> io::Result<()> {
        for frame in self.frames.drain(..) {
            self.buf.extend_from_slice(&frame);
        }
        let result = stream.write_all(&self.buf).await;
        self.buf.clear();
        if self.inbox.is_empty() {
            self.buf.shrink_to(IDLE_BYTES);
            self.frames.shrink_to(IDLE_FRAMES);
        }
        result
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
        for _ in 0..MAX_FRAMES + 5 {
            assert!(out.push(frame(1)));
        }
        assert_eq!(filled(&mut inbox).map(|f| f.len()), Some(MAX_FRAMES));
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

    #[test]
    fn a_writer_sends_everything_in_order_and_keeps_no_batch_once_idle() {
        let (mut out, inbox) = channel(4096, usize::MAX);
        let frames: Vec<Frame> = (0..MAX_FRAMES as u32 + 300)
            .map(|i| (0..(i % 7 + 1) * 20).map(|j| (i * 7 + j) as u8).collect::<Vec<u8>>().into())
            .collect();
        for frame in &frames {
            assert!(out.push(Arc::clone(frame)));
        }
        let mut writer = Writer::new(inbox);
        let mut sink = Vec::new();
        assert!(block_on(writer.take()));
        writer.add(vec![255u8; 4].into());
        assert!(block_on(writer.write(&mut sink)).is_ok());
        assert!(writer.buf.capacity() > IDLE_BYTES, "more is queued: the buffer stays for the next write");
        assert!(block_on(writer.take()));
        assert!(block_on(writer.write(&mut sink)).is_ok());
        assert!(writer.buf.capacity() <= IDLE_BYTES && writer.frames.capacity() <= IDLE_FRAMES);

        let first: usize = frames[..MAX_FRAMES].iter().map(|f| f.len()).sum();
        let mut expected: Vec<u8> = frames[..MAX_FRAMES].iter().flat_map(|f| f.to_vec()).collect();
        expected.extend([255u8; 4]);
        expected.extend(frames[MAX_FRAMES..].iter().flat_map(|f| f.to_vec()));
        assert!(first > IDLE_BYTES);
        assert_eq!(sink, expected, "the first batch, the heartbeat after it, then the rest");
        drop(out);
        assert!(!block_on(writer.take()), "no sender and nothing left: the writer ends");
    }
}
