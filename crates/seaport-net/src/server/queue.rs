//! A connection's outgoing queue, bounded by messages and by bytes.
//!
//! The core never waits for a socket: whatever it addresses to a connection goes into
//! this queue with a non-blocking push, and a connection whose queue is full is dropped
//! as too slow. Counting messages alone would let one connection that never reads hold
//! `messages x` the largest message (a snapshot chunk is up to 256 KiB), so the bytes
//! waiting are bounded too.
//!
//! The queue is a `VecDeque` of shared frames, or of runs of a [`SharedLog`]'s entries,
//! under a mutex that only the hub (pushing, already under its own lock) and the
//! connection's writer (draining) take. A push is a slot of 16 bytes or one more entry
//! in the last run, and no allocation of its own, and it wakes the writer only when the
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
use std::task::{Context, Poll, Waker};

use futures::AsyncWrite;
use seaport_core::{Change, Record};

use super::Frame;

/// Most bytes a writer takes from its queue for one write (one frame of any size always),
/// and the most it copies into its thread's buffer for one write call.
///
/// A writer holds what it took, as references to the frames, until the socket has
/// accepted it all. Back-to-back runs showed no difference in CPU between 32, 64 and
/// 256 KiB within the machine's noise.
pub(crate) const BATCH: usize = 64 * 1024;

/// At most this many pieces go into one vectored write; more are copied together.
const MAX_SLICES: usize = 16;

/// A drained queue keeps at most this many slots of its peak for the next burst.
const KEEP_SLOTS: usize = 1024;

/// The shared log packs its changes into chunks of this many.
const CHUNK: usize = 256;

/// A writer whose socket stopped taking a write encodes at least this many bytes of the
/// shared log's lines for the next one (and twice what the socket took last, up to
/// [`BATCH`]), so that lines encoded for a full socket are few.
const MIN_ENCODE: usize = 8 * 1024;

/// Writes a change of the shared log as its line: the record, and whether it was freed
/// (else registered or updated).
pub(crate) type EncodeLine = fn(&Record, bool, &mut Vec<u8>);

/// A change of the shared log, with the length of its line: 16 bytes.
pub(crate) struct LogLine {
    record: Arc<Record>,
    len: u32,
    freed: bool,
}

/// [`CHUNK`] changes of the shared log, sealed, and how they go on the wire.
pub(crate) struct Chunk {
    lines: Box<[LogLine]>,
    encode: EncodeLine,
}

/// Bytes to send: a frame, or a run of changes of one of the shared log's chunks, which
/// the writer encodes as lines when it sends them. 24 bytes: a writer holds a few of them
/// while its socket is full, and a thousand node connections' writers can be.
pub(crate) enum Piece {
    /// Bytes `start..end` of a frame (a frame is at most 4 GiB: its length is a u32 on
    /// the wire).
    Bytes { bytes: Frame, start: u32, end: u32 },
    /// Changes `start..end` of a chunk, whose lines are `len` bytes in all.
    Lines { chunk: Arc<Chunk>, start: u16, end: u16, len: u32 },
}

impl Piece {
    fn whole(bytes: Frame) -> Piece {
        let end = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        Piece::Bytes { bytes, start: 0, end }
    }

    /// The bytes, for a frame; `None` for lines, which are encoded as they are written.
    fn bytes(&self) -> Option<&[u8]> {
        match self {
            Piece::Bytes { bytes, start, end } => Some(bytes.get(*start as usize..*end as usize).unwrap_or_default()),
            Piece::Lines { .. } => None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Piece::Bytes { start, end, .. } => (end - start) as usize,
            Piece::Lines { len, .. } => *len as usize,
        }
    }

    /// Appends the piece's bytes from `skip` on to `out`; of lines, whole ones while `out`
    /// stays within `limit` bytes (into an empty `out`, at least one, or the rest of the one
    /// `skip` ends in).
    fn write_into(&self, out: &mut Vec<u8>, mut skip: usize, limit: usize) {
        match self {
            Piece::Bytes { .. } => out.extend_from_slice(self.bytes().and_then(|b| b.get(skip..)).unwrap_or_default()),
            Piece::Lines { chunk, start, end, .. } => {
                let lines = chunk.lines.get(*start as usize..*end as usize).unwrap_or_default();
                for line in lines {
                    let len = line.len as usize;
                    if skip >= len {
                        skip -= len;
                        continue;
                    }
                    if !out.is_empty() && out.len() + len - skip > limit {
                        break;
                    }
                    let at = out.len();
                    (chunk.encode)(&line.record, line.freed, out);
                    if skip > 0 {
                        // The part of the line an earlier write took.
                        out.drain(at..(at + skip).min(out.len()));
                        skip = 0;
                    }
                }
            }
        }
    }

    /// The piece's bytes (for tests).
    #[cfg(test)]
    fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_into(&mut out, 0, usize::MAX);
        out
    }
}

/// Bytes the writer makes when it comes to them: appends the next part to the buffer and
/// says whether more is to come ([`Outbox::push_lazy`]).
pub(crate) type Encode = Box<dyn FnMut(&mut Vec<u8>) -> bool + Send>;

/// One entry of a queue: a frame of its own, a run of consecutive entries of the
/// [`SharedLog`] it draws on, or a message encoded only when the writer comes to it.
enum Slot {
    Frame(Frame),
    /// Log entries `from..to`.
    Shared {
        from: u64,
        to: u64,
    },
    /// The bytes `encode` makes, `held` of them (as estimated) still counted against the
    /// queue's bound.
    Lazy {
        encode: Encode,
        held: usize,
    },
}

struct State {
    slots: VecDeque<Slot>,
    /// Messages and bytes queued, shared runs counted entry by entry.
    messages: usize,
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
    /// The log the `Shared` slots point into, for queues that take shared changes.
    log: Option<Arc<SharedLog>>,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        super::lock(&self.state)
    }
}

/// Changes sent to many connections alike, kept once for all of them.
///
/// A node seaport client is sent every change (node clients replicate the whole
/// registry), so under a burst each of a thousand node connections had a slot per change
/// queued: 10^7 slots, most of a hub's memory, at 1 000 clients x 10 services. A change
/// for node connections now goes into this log once, and each connection's queue holds
/// runs of consecutive log entries (`Slot::Shared`): a run grows by a counter when the
/// next change goes to the same connection, so a connection that is sent every change
/// holds one slot however far behind it is. An entry stays until every connection it
/// was queued for has taken it (or is gone).
///
/// The log keeps the changes, not their lines: each connection's writer encodes the
/// lines it sends into its thread's buffer as the socket takes them. A log of encoded
/// lines (about 110 bytes each) held every line that the slowest connection had not
/// taken yet, and node clients read slowly: at 1 000 clients x 10 services, the hub's
/// largest single cost per registration at the moment every record had reached a
/// watcher. An entry is now a change and its line's length in a chunk of [`CHUNK`]
/// changes (16 bytes, the record itself being the registry's), and a 4-byte count. A
/// writer takes a run of entries of one chunk as one piece, holding the chunk.
pub(crate) struct SharedLog {
    inner: Mutex<LogInner>,
}

struct LogInner {
    encode: EncodeLine,
    /// The sequence number of `pending[0]`.
    base: u64,
    /// For each entry, the queues that hold it and have not taken it yet; may dip below
    /// zero while it is being queued.
    pending: VecDeque<i32>,
    /// Sealed chunks, oldest first, each with the sequence number of its first entry.
    chunks: VecDeque<(u64, Arc<Chunk>)>,
    /// The entries from `open_first` on, not sealed into a chunk yet: the first writer
    /// to take one of them seals them.
    open: Vec<LogLine>,
    open_first: u64,
    /// The entry being queued, kept even while no queue holds it (a writer can take it
    /// before the count is in).
    queuing: Option<u64>,
    /// Where a change is encoded to learn its line's length.
    scratch: Vec<u8>,
}

impl SharedLog {
    /// A log whose changes go on the wire as `encode` writes them.
    pub(crate) fn new(encode: EncodeLine) -> Arc<SharedLog> {
        let inner = LogInner {
            encode,
            base: 0,
            pending: VecDeque::new(),
            chunks: VecDeque::new(),
            open: Vec::new(),
            open_first: 0,
            queuing: None,
            scratch: Vec::new(),
        };
        Arc::new(SharedLog { inner: Mutex::new(inner) })
    }

    fn lock(&self) -> MutexGuard<'_, LogInner> {
        super::lock(&self.inner)
    }

    /// Adds `change` and returns its line's length and its sequence number, for
    /// [`Outbox::push_shared`]; then [`queued`](Self::queued) says how many queues took
    /// it. `None`, and no entry, when its line is empty.
    pub(crate) fn append(&self, change: &Change) -> Option<(usize, u64)> {
        let mut log = self.lock();
        let log = &mut *log;
        if log.open.len() >= CHUNK {
            log.seal();
        }
        log.scratch.clear();
        let freed = matches!(change, Change::Free(_));
        (log.encode)(change.record(), freed, &mut log.scratch);
        let len = log.scratch.len();
        if log.scratch.capacity() > BATCH {
            // Past one long line: back to nothing.
            log.scratch = Vec::new();
        }
        let Ok(len @ 1..) = u32::try_from(len) else { return None };
        let seq = log.base + log.pending.len() as u64;
        log.pending.push_back(0);
        log.open.push(LogLine { record: Arc::clone(change.record()), len, freed });
        log.queuing = Some(seq);
        Some((len as usize, seq))
    }

    /// Entry `seq` was queued for `count` connections.
    pub(crate) fn queued(&self, seq: u64, count: usize) {
        let mut log = self.lock();
        if let Some(pending) = log.pending_mut(seq) {
            *pending = pending.saturating_add(i32::try_from(count).unwrap_or(i32::MAX));
        }
        if log.queuing == Some(seq) {
            log.queuing = None;
        }
        log.trim();
    }

    /// Entries in the log (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().pending.len()
    }

    /// Changes the log holds, sealed or not (for tests).
    #[cfg(test)]
    fn changes_held(&self) -> usize {
        let log = self.lock();
        log.chunks.iter().map(|(_, c)| c.lines.len()).sum::<usize>() + log.open.len()
    }
}

impl LogInner {
    fn pending_mut(&mut self, seq: u64) -> Option<&mut i32> {
        let at = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        self.pending.get_mut(at)
    }

    /// Entry `seq`, as a piece of its chunk (sealing the open entries if it is one of them).
    fn piece(&mut self, seq: u64) -> Option<Piece> {
        self.pending_mut(seq)?;
        if seq >= self.open_first {
            self.seal();
        }
        let at = self.chunks.partition_point(|(first, _)| *first <= seq).checked_sub(1)?;
        let (first, chunk) = self.chunks.get(at)?;
        let start = u16::try_from(seq - first).ok()?;
        let len = chunk.lines.get(start as usize)?.len;
        Some(Piece::Lines { chunk: Arc::clone(chunk), start, end: start + 1, len })
    }

    /// Makes the open entries a chunk that writers can share.
    fn seal(&mut self) {
        if !self.open.is_empty() {
            let lines = std::mem::take(&mut self.open).into_boxed_slice();
            self.chunks.push_back((self.open_first, Arc::new(Chunk { lines, encode: self.encode })));
        }
        self.open_first = self.base + self.pending.len() as u64;
    }

    /// A queue is done with `from..to`: taken, or dropped with its connection.
    fn release(&mut self, from: u64, to: u64) {
        for seq in from..to {
            if let Some(pending) = self.pending_mut(seq) {
                *pending -= 1;
            }
        }
        self.trim();
    }

    fn trim(&mut self) {
        while self.pending.front().is_some_and(|p| *p <= 0) && self.queuing != Some(self.base) {
            self.pending.pop_front();
            self.base += 1;
        }
        // A chunk goes once every entry in it has.
        while self.chunks.front().is_some() {
            let next = self.chunks.get(1).map_or(self.open_first, |(first, _)| *first);
            if next > self.base {
                break;
            }
            self.chunks.pop_front();
        }
        if self.pending.is_empty() {
            self.open.clear();
            self.open_first = self.base;
            if self.pending.capacity() > KEEP_SLOTS {
                self.pending.shrink_to(KEEP_SLOTS);
            }
        }
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
    channel_with(messages, max_bytes, None)
}

/// [`channel`], also taking runs of `log`'s entries ([`Outbox::push_shared`]).
pub(crate) fn channel_with(messages: usize, max_bytes: usize, log: Option<Arc<SharedLog>>) -> (Outbox, Inbox) {
    let state = State { slots: VecDeque::new(), messages: 0, bytes: 0, waker: None, senders: 1, open: true };
    let queue = Arc::new(Queue { state: Mutex::new(state), max_messages: messages.max(1), max_bytes, log });
    (Outbox { queue: Arc::clone(&queue) }, Inbox { queue })
}

impl Outbox {
    /// Queues `frame`; `false` when the queue is full (or its writer is gone).
    pub(crate) fn push(&mut self, frame: Frame) -> bool {
        let len = frame.len();
        self.push_slot(len, |slots| slots.push_back(Slot::Frame(frame)))
    }

    /// Queues a heartbeat, whatever the queue holds (it is a few bytes, sent once per
    /// heartbeat interval); `false` only when the writer is gone.
    pub(crate) fn push_beat(&mut self, frame: Frame) -> bool {
        let len = frame.len();
        self.push_slot_within(len, false, |slots| slots.push_back(Slot::Frame(frame)))
    }

    /// Queues entry `seq` of the queue's shared log, `len` bytes long; `false` when the
    /// queue is full (or its writer is gone, or it has no log). Entries must be pushed
    /// in the order they were appended.
    pub(crate) fn push_shared(&mut self, seq: u64, len: usize) -> bool {
        if self.queue.log.is_none() {
            return false;
        }
        self.push_slot(len, |slots| match slots.back_mut() {
            Some(Slot::Shared { to, .. }) if *to == seq => *to += 1,
            _ => slots.push_back(Slot::Shared { from: seq, to: seq + 1 }),
        })
    }

    /// Queues a message that the writer encodes when it comes to it, a part at a time
    /// (`encode`), about `estimate` bytes in all; `false` when the queue is full (or its
    /// writer is gone). A snapshot waits as its records, not as their bytes: a thousand
    /// node clients connecting at once to a hub of 10 000 records held a copy of every
    /// record's line each, 110 bytes a record, until their sockets took it.
    pub(crate) fn push_lazy(&mut self, estimate: usize, encode: Encode) -> bool {
        self.push_slot(estimate, |slots| slots.push_back(Slot::Lazy { encode, held: estimate }))
    }

    /// Whether the writer is gone (its connection ended): pushes fail for that, not for
    /// a full queue.
    pub(crate) fn is_closed(&self) -> bool {
        !self.queue.lock().open
    }

    fn push_slot(&mut self, len: usize, put: impl FnOnce(&mut VecDeque<Slot>)) -> bool {
        self.push_slot_within(len, true, put)
    }

    /// Queues what `put` adds, `len` bytes, if the writer is still there and, when
    /// `bounded`, the queue has room for it.
    fn push_slot_within(&mut self, len: usize, bounded: bool, put: impl FnOnce(&mut VecDeque<Slot>)) -> bool {
        let waker = {
            let mut state = self.queue.lock();
            let full = state.messages >= self.queue.max_messages
                || (state.bytes > 0 && state.bytes.saturating_add(len) > self.queue.max_bytes);
            if !state.open || (bounded && full) {
                return false;
            }
            put(&mut state.slots);
            state.messages += 1;
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
        self.queue.lock().slots.is_empty()
    }

    /// Waits until something is queued, then moves the queued frames to `out`, in order,
    /// up to [`BATCH`] bytes or [`MAX_FRAMES`] frames (at least one frame), for one write;
    /// consecutive lines of one chunk of the shared log come as one piece. `false` once
    /// every sender is gone and nothing is left.
    pub(crate) async fn fill(&mut self, out: &mut VecDeque<Piece>) -> bool {
        let taken = poll_fn(|cx| {
            let mut state = self.queue.lock();
            if state.slots.is_empty() {
                if state.senders == 0 {
                    return Poll::Ready(Taken::Nothing);
                }
                match &state.waker {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    _ => state.waker = Some(cx.waker().clone()),
                }
                return Poll::Pending;
            }
            // A message to encode, first: encoded outside the lock, which the hub takes to push.
            if let Some(Slot::Lazy { .. }) = state.slots.front() {
                if let Some(Slot::Lazy { encode, held }) = state.slots.pop_front() {
                    return Poll::Ready(Taken::Lazy(encode, held));
                }
            }
            let state = &mut *state;
            let mut log = None;
            let mut taken = 0;
            let mut count = 0;
            'slots: while let Some(slot) = state.slots.front_mut() {
                match slot {
                    Slot::Frame(frame) => {
                        if count >= MAX_FRAMES || (taken > 0 && taken + frame.len() > BATCH) {
                            break;
                        }
                        taken += frame.len();
                        count += 1;
                        if let Some(Slot::Frame(frame)) = state.slots.pop_front() {
                            if !frame.is_empty() {
                                out.push_back(Piece::whole(frame));
                            }
                        }
                    }
                    Slot::Shared { from, to } => {
                        let Some(shared) = &self.queue.log else { break };
                        let log = log.get_or_insert_with(|| shared.lock());
                        let start = *from;
                        while *from < *to {
                            let Some(piece) = log.piece(*from) else {
                                // Cannot happen (an entry stays while a queue holds it);
                                // if it did, there would be nothing left to send.
                                count += 1;
                                *from += 1;
                                continue;
                            };
                            let len = piece.len();
                            if count >= MAX_FRAMES || (taken > 0 && taken + len > BATCH) {
                                log.release(start, *from);
                                break 'slots;
                            }
                            // The next entry of the same chunk lengthens the run.
                            let merged = match (out.back_mut(), &piece) {
                                (
                                    Some(Piece::Lines { chunk, end, len: run, .. }),
                                    Piece::Lines { chunk: next, start: at, .. },
                                ) if Arc::ptr_eq(chunk, next) && *end == *at => {
                                    *end += 1;
                                    *run += len as u32;
                                    true
                                }
                                _ => false,
                            };
                            if !merged {
                                out.push_back(piece);
                            }
                            taken += len;
                            count += 1;
                            *from += 1;
                        }
                        log.release(start, *from);
                        state.slots.pop_front();
                    }
                    // Taken on its own, by the next call.
                    Slot::Lazy { .. } => break,
                }
            }
            state.messages = state.messages.saturating_sub(count);
            state.bytes = state.bytes.saturating_sub(taken);
            if state.slots.is_empty() && state.slots.capacity() > KEEP_SLOTS {
                state.slots.shrink_to(KEEP_SLOTS);
            }
            Poll::Ready(Taken::Pieces)
        })
        .await;
        match taken {
            Taken::Nothing => false,
            Taken::Pieces => true,
            Taken::Lazy(mut encode, held) => {
                let mut bytes = Vec::new();
                let more = encode(&mut bytes);
                let done = if more { bytes.len().min(held) } else { held };
                let mut state = self.queue.lock();
                state.bytes = state.bytes.saturating_sub(done);
                if more {
                    state.slots.push_front(Slot::Lazy { encode, held: held - done });
                } else {
                    state.messages = state.messages.saturating_sub(1);
                }
                drop(state);
                if !bytes.is_empty() {
                    out.push_back(Piece::whole(bytes.into()));
                }
                true
            }
        }
    }
}

/// What [`Inbox::fill`] took.
enum Taken {
    /// Nothing, and nothing will come.
    Nothing,
    /// Pieces, into its `out`.
    Pieces,
    /// A message to encode (the next part of it), and the bytes it still counts for.
    Lazy(Encode, usize),
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        state.open = false;
        // What is still queued can never be sent: release it now rather than with the
        // last sender, shared entries included.
        let slots = std::mem::take(&mut state.slots);
        if let Some(shared) = &self.queue.log {
            let mut log = shared.lock();
            for slot in &slots {
                if let Slot::Shared { from, to } = slot {
                    log.release(*from, *to);
                }
            }
        }
        state.messages = 0;
        state.bytes = 0;
    }
}

/// Most frames a writer takes from its queue for one write.
pub(crate) const MAX_FRAMES: usize = 1024;

/// A connection's writer: takes what is queued and sends it in large writes.
///
/// The frames taken wait here as shared references until the socket has accepted all of
/// their bytes; each write copies as many of them as fit in [`BATCH`] bytes into a
/// buffer of the thread's, not the connection's, so that a thousand connections busy at
/// once hold their frames' references, not a 64 KiB copy each (they did: 16 MiB of the
/// hub's peak with a thousand node clients). Once the queue is empty the writer holds
/// nothing at all.
pub(crate) struct Writer {
    inbox: Inbox,
    frames: VecDeque<Piece>,
    /// Bytes of `frames[0]` already written.
    offset: usize,
    /// How many bytes of lines to encode for the next write (see [`MIN_ENCODE`]).
    encode_budget: usize,
}

impl Writer {
    pub(crate) fn new(inbox: Inbox) -> Writer {
        Writer { inbox, frames: VecDeque::new(), offset: 0, encode_budget: BATCH }
    }

    /// Waits until something is queued and takes it (see [`Inbox::fill`]); the frames
    /// wait in `self` for [`write`](Self::write). `false` once every sender is gone and
    /// nothing is left.
    pub(crate) async fn take(&mut self) -> bool {
        self.inbox.fill(&mut self.frames).await
    }

    /// Queues `frame` for the next write, after what was taken (a heartbeat).
    pub(crate) fn add(&mut self, frame: Frame) {
        self.frames.push_back(Piece::whole(frame));
    }

    /// Sends what was taken, up to [`BATCH`] bytes a write call: a few pieces (one frame,
    /// or runs of the shared log's lines, kilobytes each) written from where they are in
    /// one vectored write; many small frames copied together into the thread's buffer,
    /// which costs far less than a vectored write of many of them (on loopback, half the
    /// hub's CPU with node clients when each of their lines was a frame of its own).
    pub(crate) async fn write<W: AsyncWrite + Unpin>(&mut self, stream: &mut W) -> io::Result<()> {
        let result = poll_fn(|cx| self.poll_write(cx, stream)).await;
        if result.is_err() {
            self.frames.clear();
            self.offset = 0;
        }
        if self.frames.is_empty() && self.inbox.is_empty() {
            self.frames = VecDeque::new();
        }
        result
    }

    fn poll_write<W: AsyncWrite + Unpin>(&mut self, cx: &mut Context<'_>, stream: &mut W) -> Poll<io::Result<()>> {
        while let Some(first) = self.frames.front() {
            if first.len() <= self.offset {
                self.advance(0);
                continue;
            }
            // The pieces of this write: the rest of the first, then whole ones up to BATCH.
            // Frames go from where they are; lines are encoded into the thread's buffer.
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut count = 0;
            let mut bytes = 0;
            let mut copy = false;
            for (i, piece) in self.frames.iter().enumerate() {
                let skip = if i == 0 { self.offset } else { 0 };
                let len = piece.len() - skip;
                if count > 0 && bytes + len > BATCH {
                    break;
                }
                match (slices.get_mut(count), piece.bytes()) {
                    (Some(slot), Some(piece)) => *slot = IoSlice::new(piece.get(skip..).unwrap_or_default()),
                    _ => {
                        copy = true;
                        break;
                    }
                }
                count += 1;
                bytes += len;
            }
            let (written, offered) = if copy {
                crate::scratch::with_write_buffer(|buf| {
                    buf.clear();
                    // Exactly a batch, where growing by doubling as it fills would leave
                    // up to twice that.
                    buf.reserve_exact(BATCH);
                    for (i, piece) in self.frames.iter().enumerate() {
                        let skip = if i == 0 { self.offset } else { 0 };
                        // Whole frames, and as many lines as fit.
                        if i > 0 && piece.bytes().is_some() && buf.len() + piece.len() > self.encode_budget {
                            break;
                        }
                        piece.write_into(buf, skip, self.encode_budget);
                        if buf.len() >= self.encode_budget {
                            break;
                        }
                    }
                    let written = Pin::new(&mut *stream).poll_write(cx, buf);
                    let offered = buf.len();
                    // The thread's buffer stays: it holds a batch, or one line more; past
                    // one long line it goes back to a batch.
                    if buf.capacity() > 2 * BATCH {
                        *buf = Vec::with_capacity(BATCH);
                    }
                    (written, offered)
                })
            } else if count == 1 {
                let rest = slices[0];
                (Pin::new(&mut *stream).poll_write(cx, &rest), bytes)
            } else {
                (Pin::new(&mut *stream).poll_write_vectored(cx, &slices[..count]), bytes)
            };
            match written {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    if copy {
                        // Encode about what the socket takes: twice its last take, at least
                        // MIN_ENCODE, and a whole batch while it takes everything.
                        self.encode_budget = if n < offered { (2 * n).clamp(MIN_ENCODE, BATCH) } else { BATCH };
                    }
                    self.advance(n)
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    if copy {
                        self.encode_budget = MIN_ENCODE;
                    }
                    return Poll::Pending;
                }
            }
        }
        Poll::Ready(Ok(()))
    }

    /// `n` more bytes were written: drops the frames they finish (and empty ones).
    fn advance(&mut self, mut n: usize) {
        while let Some(first) = self.frames.front() {
            let left = first.len().saturating_sub(self.offset);
            if n < left {
                self.offset += n;
                return;
            }
            n -= left;
            self.offset = 0;
            self.frames.pop_front();
        }
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
        let mut out = VecDeque::new();
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

    /// An [`Encode`] of `parts` parts of `len` bytes each, the first byte of each its index.
    fn parts(parts: u8, len: usize) -> Encode {
        let mut next = 0;
        Box::new(move |out: &mut Vec<u8>| {
            out.push(next);
            out.extend(std::iter::repeat_n(0, len - 1));
            next += 1;
            next < parts
        })
    }

    #[test]
    fn a_lazy_message_is_encoded_part_by_part_in_its_place() {
        let (mut out, mut inbox) = channel(8, 1000);
        assert!(out.push(frame(10)));
        assert!(out.push_lazy(300, parts(3, 100)));
        assert!(out.push(frame(20)));
        assert!(!out.push_lazy(700, parts(1, 1)), "its estimate counts against the bound");
        assert_eq!(filled(&mut inbox), Some(vec![10]), "what comes before it first");
        assert_eq!(filled(&mut inbox), Some(vec![100]));
        assert!(!out.push(frame(781)), "the parts not taken yet still count (200 of 1 000 bytes)");
        assert!(out.push(frame(780)));
        assert_eq!(filled(&mut inbox), Some(vec![100]));
        assert_eq!(filled(&mut inbox), Some(vec![100]), "the last part");
        assert_eq!(filled(&mut inbox), Some(vec![20, 780]), "then what came after it");
        let state = inbox.queue.lock();
        assert_eq!((state.messages, state.bytes), (0, 0), "nothing counted once all is taken");
    }

    #[test]
    fn a_lazy_message_is_written_whole_and_in_order() {
        let (mut out, inbox) = channel(8, usize::MAX);
        assert!(out.push(vec![9u8; 2].into()));
        assert!(out.push_lazy(30, parts(3, 2)));
        assert!(out.push(vec![8u8; 1].into()));
        drop(out);
        let mut writer = Writer::new(inbox);
        let mut sink = Vec::new();
        while block_on(writer.take()) {
            assert!(block_on(writer.write(&mut sink)).is_ok());
        }
        assert_eq!(sink, [9, 9, 0, 0, 1, 0, 2, 0, 8]);
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

    /// Letters and digits, for ids: the line of a test change is its record's id.
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    fn tag_byte(tag: u8) -> u8 {
        ALNUM[tag as usize % ALNUM.len()]
    }

    /// The test log's encoding: a change's line is its record's id.
    fn id_line(record: &Record, _freed: bool, out: &mut Vec<u8>) {
        out.extend_from_slice(record.id.as_str().as_bytes());
    }

    /// A change whose line is `len` (1 to 128) bytes of `tag`'s letter.
    fn line(tag: u8, len: usize) -> Change {
        let id = String::from_utf8(vec![tag_byte(tag); len]).unwrap();
        Change::Register(Arc::new(seaport_core::Record {
            id: seaport_core::RecordId::new(id).unwrap(),
            role: seaport_core::Role::new("r").unwrap(),
            version: None,
            host: "h".into(),
            port: 1,
            meta: seaport_core::Meta::new(),
            origin: seaport_core::HubId(0),
            incarnation: 1,
        }))
    }

    /// What [`line`] sends.
    fn line_bytes(tag: u8, len: usize) -> Vec<u8> {
        vec![tag_byte(tag); len]
    }

    fn own(tag: u8, len: usize) -> Frame {
        line_bytes(tag, len).into()
    }

    /// Appends `change` to `log`, returning its sequence number.
    fn append(log: &SharedLog, change: &Change) -> u64 {
        log.append(change).map(|(_, seq)| seq).unwrap_or(u64::MAX)
    }

    /// Appends `change` to `log` and queues it on each of `outs`, as the hub does.
    fn broadcast(log: &SharedLog, outs: &mut [&mut Outbox], change: Change) -> usize {
        let Some((len, seq)) = log.append(&change) else { return 0 };
        let mut queued = 0;
        for out in outs.iter_mut() {
            if out.push_shared(seq, len) {
                queued += 1;
            }
        }
        log.queued(seq, queued);
        queued
    }

    #[test]
    fn shared_entries_keep_their_place_among_own_frames_and_cost_one_slot_per_run() {
        let log = SharedLog::new(id_line);
        let (mut a, mut inbox_a) = channel_with(100_000, usize::MAX, Some(Arc::clone(&log)));
        let (mut b, inbox_b) = channel_with(100_000, usize::MAX, Some(Arc::clone(&log)));
        assert!(a.push(own(1, 3)));
        for i in 0..10_000 {
            assert_eq!(broadcast(&log, &mut [&mut a, &mut b], line(2, 1 + i % 5)), 2);
        }
        assert!(a.push(own(3, 3)), "a frame of a's own after the shared ones");
        broadcast(&log, &mut [&mut a, &mut b], line(4, 2));
        assert_eq!(a.queue.lock().slots.len(), 4, "own, a run of 10 000, own, a run of one");
        assert_eq!(b.queue.lock().slots.len(), 1, "every change went to b: one run");
        assert_eq!(a.queue.lock().messages, 10_003);
        assert_eq!(log.len(), 10_001);

        let mut got = Vec::new();
        while a.queue.lock().messages > 0 {
            let mut out = VecDeque::new();
            assert_eq!(inbox_a.fill(&mut out).now_or_never(), Some(true));
            assert!(out.len() <= MAX_FRAMES);
            got.extend(out.iter().flat_map(Piece::to_vec));
        }
        let mut wanted = line_bytes(1, 3);
        (0..10_000).for_each(|i| wanted.extend(line_bytes(2, 1 + i % 5)));
        wanted.extend(line_bytes(3, 3));
        wanted.extend(line_bytes(4, 2));
        assert_eq!(got, wanted, "in the order queued, across batches");
        assert_eq!(a.queue.lock().bytes, 0);
        assert_eq!(log.len(), 10_001, "b has not taken them yet");
        drop(inbox_b);
        assert_eq!(log.len(), 0, "b's connection is gone: nothing is kept for it");
        assert_eq!(log.changes_held(), 0, "nor any of their changes");
        assert!(!b.push_shared(append(&log, &line(5, 1)), 1), "a gone writer takes nothing");
    }

    #[test]
    fn shared_changes_are_packed_into_chunks_sent_as_pieces_and_dropped_when_done() {
        let log = SharedLog::new(id_line);
        let (mut a, mut inbox_a) = channel_with(100_000, usize::MAX, Some(Arc::clone(&log)));
        let (mut b, mut inbox_b) = channel_with(100_000, usize::MAX, Some(Arc::clone(&log)));
        // Lines of 100 bytes, CHUNK changes a chunk.
        let lines = 3 * CHUNK;
        for i in 0..lines {
            assert_eq!(broadcast(&log, &mut [&mut a, &mut b], line(i as u8, 100)), 2);
        }
        assert_eq!(log.changes_held(), lines, "each change once");
        let take = |inbox: &mut Inbox| {
            let mut out = VecDeque::new();
            assert_eq!(inbox.fill(&mut out).now_or_never(), Some(true));
            out
        };
        let first = take(&mut inbox_a);
        let per_batch = BATCH / 100;
        assert_eq!(first.len(), per_batch.div_ceil(CHUNK), "a batch is a piece a chunk, not a piece a line");
        assert_eq!(first.iter().map(Piece::len).sum::<usize>(), per_batch * 100);
        let mut got: Vec<u8> = first.iter().flat_map(Piece::to_vec).collect();
        // A change appended after the writer sealed the open ones does not disturb them.
        assert_eq!(broadcast(&log, &mut [&mut a, &mut b], line(61, 7)), 2);
        while a.queue.lock().messages > 0 {
            got.extend(take(&mut inbox_a).iter().flat_map(Piece::to_vec));
        }
        let mut wanted: Vec<u8> = (0..lines).flat_map(|i| line_bytes(i as u8, 100)).collect();
        wanted.extend(line_bytes(61, 7));
        assert!(got == wanted, "every line once, in order");
        assert_eq!(log.changes_held(), lines + 1, "b still needs them all");
        let mut taken = 0;
        while taken < 2 * CHUNK * 100 {
            taken += take(&mut inbox_b).iter().map(Piece::len).sum::<usize>();
        }
        let held = log.changes_held();
        assert!(held <= lines + 1 - CHUNK, "a chunk b is done with is gone: {held} changes held");
        while b.queue.lock().messages > 0 {
            take(&mut inbox_b);
        }
        assert_eq!((log.len(), log.changes_held()), (0, 0), "all taken: the log holds nothing");
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn log_entries_and_pieces_stay_small() {
        assert_eq!(std::mem::size_of::<LogLine>(), 16);
        assert_eq!(std::mem::size_of::<Piece>(), 24);
    }

    #[test]
    fn lines_are_encoded_as_they_are_written_and_resume_mid_line() {
        let log = SharedLog::new(id_line);
        let (mut out, inbox) = channel_with(100_000, usize::MAX, Some(Arc::clone(&log)));
        let mut wanted = Vec::new();
        for i in 0..3 * CHUNK {
            let len = 1 + i * 37 % 128;
            assert_eq!(broadcast(&log, &mut [&mut out], line(i as u8, len)), 1);
            wanted.extend(line_bytes(i as u8, len));
            if i % 100 == 0 {
                assert!(out.push(own(60, 9)));
                wanted.extend(line_bytes(60, 9));
            }
        }
        let mut writer = Writer::new(inbox);
        // 13 bytes a call: most writes end inside a line.
        let mut sink = Trickle::new(13);
        while !writer.inbox.is_empty() {
            assert!(block_on(writer.take()));
            assert!(block_on(writer.write(&mut sink)).is_ok());
        }
        assert!(sink.got == wanted, "every byte once, in order");
        // After the first write, which offers a batch.
        let most = sink.writes.iter().skip(1).max().copied().unwrap_or(0);
        assert!(most <= MIN_ENCODE, "a socket that takes little is offered little: {most}");
        assert_eq!(log.len(), 0, "written: the log holds nothing");
    }

    #[test]
    fn a_shared_entry_taken_before_it_is_counted_is_still_released() {
        let log = SharedLog::new(id_line);
        let (mut out, mut inbox) = channel_with(8, usize::MAX, Some(Arc::clone(&log)));
        let seq = append(&log, &line(1, 4));
        assert!(out.push_shared(seq, 4));
        assert_eq!(filled(&mut inbox), Some(vec![4]), "the writer got there first");
        assert_eq!(log.len(), 1, "still being queued: kept");
        log.queued(seq, 1);
        assert_eq!(log.len(), 0);
    }

    #[test]
    fn shared_entries_count_against_the_bounds() {
        let log = SharedLog::new(id_line);
        let (mut out, _inbox) = channel_with(3, 100, Some(Arc::clone(&log)));
        let accepted = (0..10).take_while(|_| broadcast(&log, &mut [&mut out], line(0, 1)) == 1).count();
        assert_eq!(accepted, 3, "over the messages");
        let (mut out, _inbox) = channel_with(100, 100, Some(Arc::clone(&log)));
        let accepted = (0..10).take_while(|_| broadcast(&log, &mut [&mut out], line(0, 40)) == 1).count();
        assert_eq!(accepted, 2, "over the bytes");
        let (mut plain, _inbox) = channel(8, 100);
        assert!(!plain.push_shared(0, 1), "a queue without the log takes no shared entries");
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
        assert!(!out.is_closed());
        drop(inbox);
        assert!(out.is_closed(), "refused for its writer, not for a full queue");
        assert!(!out.push(frame(10)));
        assert_eq!(out.queue.lock().bytes, 0);
        assert!(out.queue.lock().slots.is_empty());
    }

    #[test]
    fn the_writer_wakes_for_a_push_and_ends_with_the_last_sender() {
        let (mut out, mut inbox) = channel(8, 100);
        let second = out.clone();
        let writer = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut frames = VecDeque::new();
            while block_on(inbox.fill(&mut frames)) {
                got.extend(frames.drain(..).flat_map(|p| p.to_vec()));
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
    fn a_writer_sends_everything_in_order_and_keeps_nothing_once_idle() {
        let (mut out, inbox) = channel(4096, usize::MAX);
        let frames: Vec<Frame> = (0..MAX_FRAMES as u32 + 300)
            .map(|i| (0..(i % 7 + 1) * 8).map(|j| (i * 7 + j) as u8).collect::<Vec<u8>>().into())
            .collect();
        for frame in &frames {
            assert!(out.push(Arc::clone(frame)));
        }
        let mut writer = Writer::new(inbox);
        let mut sink = Vec::new();
        assert!(block_on(writer.take()));
        writer.add(vec![255u8; 4].into());
        assert!(block_on(writer.write(&mut sink)).is_ok());
        assert!(writer.frames.is_empty());
        assert!(writer.frames.capacity() > 0, "more is queued: the room stays for the next take");
        assert!(block_on(writer.take()));
        assert!(block_on(writer.write(&mut sink)).is_ok());
        assert_eq!(writer.frames.capacity(), 0, "idle: the writer holds nothing");

        let mut expected: Vec<u8> = frames[..MAX_FRAMES].iter().flat_map(|f| f.to_vec()).collect();
        expected.extend([255u8; 4]);
        expected.extend(frames[MAX_FRAMES..].iter().flat_map(|f| f.to_vec()));
        assert_eq!(sink, expected, "the first batch, the heartbeat after it, then the rest");
        drop(out);
        assert!(!block_on(writer.take()), "no sender and nothing left: the writer ends");
    }

    /// A socket that takes at most `step` bytes a call and is not ready every other call.
    /// `writes` has the bytes each call offered, and `slices` how many buffers (1 for a
    /// plain write).
    struct Trickle {
        got: Vec<u8>,
        step: usize,
        calls: usize,
        writes: Vec<usize>,
        slices: Vec<usize>,
    }

    impl Trickle {
        fn new(step: usize) -> Trickle {
            Trickle { got: Vec::new(), step, calls: 0, writes: Vec::new(), slices: Vec::new() }
        }
    }

    impl AsyncWrite for Trickle {
        fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.poll_write_vectored(cx, &[IoSlice::new(buf)])
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            self.calls += 1;
            if self.calls % 2 == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let offered: usize = bufs.iter().map(|b| b.len()).sum();
            let n = offered.min(self.step);
            let taken: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).take(n).collect();
            self.got.extend_from_slice(&taken);
            self.writes.push(offered);
            self.slices.push(bufs.len());
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn partial_and_refused_writes_resume_where_they_stopped() {
        let (mut out, inbox) = channel(4096, usize::MAX);
        let frames: Vec<Frame> = vec![
            (0..10u8).collect::<Vec<u8>>().into(),
            Vec::new().into(),
            (10..13u8).collect::<Vec<u8>>().into(),
            (0..BATCH + 3).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into(),
            (100..140u8).collect::<Vec<u8>>().into(),
        ];
        for frame in &frames {
            assert!(out.push(Arc::clone(frame)));
        }
        let mut writer = Writer::new(inbox);
        let mut sink = Trickle::new(7);
        while !writer.inbox.is_empty() {
            assert!(block_on(writer.take()));
            assert!(block_on(writer.write(&mut sink)).is_ok());
        }
        let expected: Vec<u8> = frames.iter().flat_map(|f| f.to_vec()).collect();
        assert!(sink.got == expected, "every byte once, in order");
        assert_eq!((sink.writes[0], sink.slices[0]), (13, 2), "a few frames go together, from where they are");
        assert!(sink.writes.contains(&(BATCH + 3)), "a large frame goes from where it is");
        assert!(sink.writes.iter().all(|&n| n <= BATCH + 3));

        assert!(out.push(vec![1u8; 5].into()));
        assert!(block_on(writer.take()));
        let mut closed = Trickle::new(0);
        let err = block_on(writer.write(&mut closed)).err().map(|e| e.kind());
        assert_eq!(err, Some(io::ErrorKind::WriteZero), "a socket taking nothing is an error, not a spin");
        assert!(writer.frames.is_empty(), "a failed write drops what it held");
    }

    #[test]
    fn many_small_frames_are_copied_together_and_a_few_large_ones_written_in_place() {
        let write_all = |frames: &[Frame]| {
            let (mut out, inbox) = channel(4096, usize::MAX);
            for frame in frames {
                assert!(out.push(Arc::clone(frame)));
            }
            let mut writer = Writer::new(inbox);
            let mut sink = Trickle::new(usize::MAX);
            while !writer.inbox.is_empty() {
                assert!(block_on(writer.take()));
                assert!(block_on(writer.write(&mut sink)).is_ok());
            }
            let expected: Vec<u8> = frames.iter().flat_map(|f| f.to_vec()).collect();
            assert!(sink.got == expected, "every byte once, in order");
            sink.writes.into_iter().zip(sink.slices).collect::<Vec<_>>()
        };
        let small: Vec<Frame> = (0..40u8).map(|i| vec![i; 30].into()).collect();
        assert_eq!(write_all(&small), vec![(40 * 30, 1)], "more than {MAX_SLICES} pieces: copied into one buffer");
        let large: Vec<Frame> =
            vec![vec![1u8; BATCH / 2].into(), vec![2u8; 5].into(), vec![3u8; BATCH / 2].into(), vec![4u8; 9].into()];
        assert_eq!(
            write_all(&large),
            vec![(BATCH / 2 + 5, 2), (BATCH / 2 + 9, 2)],
            "a few pieces, up to a batch a write, from where they are"
        );
    }
}
