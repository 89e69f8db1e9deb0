//! Buffers of the thread's for the bytes of one read or one write.
//!
//! A connection that waits for its peer holds no buffer: a read goes into the thread's
//! buffer and only the bytes not yet parsed are kept, in a buffer of their exact size
//! that is freed once they are all handed out; a write is copied into the thread's
//! buffer just before the write call. With thousands of connections, a buffer each (8
//! KiB to read, up to 64 KiB to write, kept between messages) was most of a hub's memory.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread::LocalKey;

use futures::AsyncRead;

/// The most one read asks for: one buffer of this size per thread. 16 KiB holds a node
/// client's burst of a hundred registrations; a frame reader asks for 8 KiB at a time
/// anyway (and more only for a larger frame, in several reads).
pub(crate) const READ_LEN: usize = 16 * 1024;

thread_local! {
    static READ: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static WRITE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Calls `f` with a buffer of the thread's (a fresh one if the thread's is in use, which
/// cannot happen unless `f` calls back in here).
fn with<T>(key: &'static LocalKey<RefCell<Vec<u8>>>, f: impl FnOnce(&mut Vec<u8>) -> T) -> T {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => f(&mut buf),
        Err(_) => f(&mut Vec::new()),
    })
}

/// Reads once, at most `max` bytes (and at most [`READ_LEN`]), and appends what came to
/// `out`.
fn poll_read_append<R: AsyncRead + Unpin>(
    reader: &mut R,
    cx: &mut Context<'_>,
    max: usize,
    out: &mut Vec<u8>,
) -> Poll<io::Result<usize>> {
    with(&READ, |buf| {
        // Sized once: readers asking for different amounts do not zero it again each time.
        if buf.len() < READ_LEN {
            buf.resize(READ_LEN, 0);
        }
        let buf = &mut buf[..max.clamp(1, READ_LEN)];
        let read = Pin::new(reader).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = read {
            out.extend_from_slice(&buf[..n]);
        }
        read
    })
}

/// Bytes read from a stream and not yet handed out (a partial frame or line, or the rest
/// of a burst), in a buffer of their own: the handed-out ones are dropped before the next
/// read, and the buffer is freed once they all are.
#[derive(Debug, Default)]
pub(crate) struct Unread {
    buf: Vec<u8>,
    start: usize,
}

impl Unread {
    /// Starts with `bytes`, already read.
    pub(crate) fn new(bytes: &[u8]) -> Unread {
        Unread { buf: bytes.to_vec(), start: 0 }
    }

    /// The bytes not handed out yet.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// The first `used` of [`bytes`](Self::bytes) were handed out.
    pub(crate) fn consume(&mut self, used: usize) {
        self.start += used;
        if self.start == self.buf.len() {
            *self = Unread::default();
        }
    }

    /// Reads once from `reader`, at most `max` bytes, after the unread ones; how many came
    /// (0 at the end of the stream).
    pub(crate) async fn read_from<R: AsyncRead + Unpin>(&mut self, reader: &mut R, max: usize) -> io::Result<usize> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        poll_fn(|cx| poll_read_append(reader, cx, max, &mut self.buf)).await
    }

    /// The buffer kept, handed-out bytes included (for tests).
    #[cfg(test)]
    pub(crate) fn kept(&self) -> &Vec<u8> {
        &self.buf
    }
}

/// Calls `write` with the thread's write buffer, as the last write left it.
pub(crate) fn with_write_buffer<T>(write: impl FnOnce(&mut Vec<u8>) -> T) -> T {
    with(&WRITE, write)
}
