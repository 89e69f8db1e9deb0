//! Reading and writing frames over async byte streams.
//!
//! Generic over [`futures::io::AsyncRead`] / [`AsyncWrite`] (`+ Unpin`), so
//! it runs over `async_std::net::TcpStream`, in-memory cursors, or anything
//! else. The wire format is described in [`crate::frame`].
//!
//! A connection goes like this (client side; the hub mirrors it):
//!
//! 1. [`send_preamble`], then [`read_preamble`] for the hub's answer (both
//!    before wrapping the stream, so no bytes are buffered ahead);
//! 2. wrap the halves in a [`FrameReader`] and a [`FrameWriter`];
//! 3. exchange frames: [`FrameReader::read_frame`], and
//!    [`FrameWriter::queue`] / [`FrameWriter::buffer_mut`] plus
//!    [`FrameWriter::flush`] to send many frames with one write.
//!
//! None of these futures is cancel-safe: dropping one mid-way may lose or
//! half-write a frame, so drop the connection rather than retry. Timeouts
//! belong to the caller (e.g. `async_std::future::timeout` around the whole
//! exchange).

use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::FrameError;
use crate::frame::{
    frame_len, parse_frame, parse_preamble, write_preamble, OwnedFrame, DEFAULT_MAX_FRAME, LEN_PREFIX, MAGIC,
    PREAMBLE_LEN, PROTOCOL_VERSION,
};
use crate::scratch::Unread;

/// How many bytes [`FrameReader`] asks the reader for at least, per read (more while a
/// larger frame is under way, up to 64 KiB a read).
pub const READ_CHUNK: usize = 8 * 1024;

/// Buffers bigger than this are released once empty, so a single big frame
/// does not pin its memory for the life of the connection.
const SHRINK_ABOVE: usize = 64 * 1024;

/// Reads a peer's preamble and returns the protocol version it announced.
///
/// Refuses a wrong magic ([`FrameError::BadMagic`], as soon as its 8 bytes
/// are in) and reports a stream that ends early as [`FrameError::Truncated`].
/// Checking the version is up to the caller. Reads exactly
/// [`PREAMBLE_LEN`] bytes, so the stream can be wrapped in a
/// [`FrameReader`] afterwards.
pub async fn read_preamble<R>(reader: &mut R) -> Result<u32, FrameError>
where
    R: AsyncRead + Unpin + ?Sized,
{
    let mut bytes = [0; PREAMBLE_LEN];
    read_exact(reader, &mut bytes[..MAGIC.len()]).await?;
    // Report a wrong magic without waiting for bytes that may never come.
    if bytes[..MAGIC.len()] == MAGIC {
        read_exact(reader, &mut bytes[MAGIC.len()..]).await?;
    }
    parse_preamble(&bytes)
}

/// `read_exact` that reports an early end of stream as [`FrameError::Truncated`].
async fn read_exact<R>(reader: &mut R, buf: &mut [u8]) -> Result<(), FrameError>
where
    R: AsyncRead + Unpin + ?Sized,
{
    reader.read_exact(buf).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    })
}

/// Writes and flushes this side's preamble ([`PROTOCOL_VERSION`]).
pub async fn send_preamble<W>(writer: &mut W) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut bytes = Vec::with_capacity(PREAMBLE_LEN);
    write_preamble(PROTOCOL_VERSION, &mut bytes);
    writer.write_all(&bytes).await?;
    writer.flush().await?;
    Ok(())
}

/// Reads frames from a byte stream.
///
/// Reads up to [`READ_CHUNK`] bytes at a time (more when a larger frame is under way)
/// through a buffer of the thread's, and keeps only the bytes not yet returned as
/// frames, in a buffer of their own that is released once they are all handed out: a
/// reader waiting for its peer holds no buffer. What it keeps never grows beyond
/// `max(READ_CHUNK, 4 + max_frame)` bytes: a frame's length is checked against the limit
/// before room is made for it.
#[derive(Debug)]
pub struct FrameReader<R> {
    reader: R,
    buf: Unread,
    max_frame: u32,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader refusing frames over [`DEFAULT_MAX_FRAME`] (1 MiB).
    pub fn new(reader: R) -> Self {
        Self::with_max_frame(reader, DEFAULT_MAX_FRAME)
    }

    /// A reader refusing frame bodies over `max_frame` bytes.
    pub fn with_max_frame(reader: R, max_frame: u32) -> Self {
        FrameReader { reader, buf: Unread::default(), max_frame }
    }

    /// Reads the next frame.
    ///
    /// Returns `Ok(None)` when the stream ends cleanly between frames, and
    /// [`FrameError::Truncated`] when it ends inside one. Any error is final
    /// for the connection.
    pub async fn read_frame(&mut self) -> Result<Option<OwnedFrame>, FrameError> {
        loop {
            if let Some(frame) = self.buffered_frame()? {
                return Ok(Some(frame));
            }
            let buffered = self.buf.bytes();
            let needed = match frame_len(buffered, self.max_frame)? {
                Some(body) => LEN_PREFIX + body,
                None => LEN_PREFIX,
            };
            // The frame is incomplete (`buffered < needed`): read at most what brings the
            // buffer to the frame's size or a chunk, whichever is more.
            let room = needed.max(READ_CHUNK) - buffered.len();
            if self.buf.read_from(&mut self.reader, room).await? == 0 {
                return if self.buf.bytes().is_empty() { Ok(None) } else { Err(FrameError::Truncated) };
            }
        }
    }

    /// The next frame if it has already been read in full, without reading more: what a
    /// caller takes after [`read_frame`](Self::read_frame) to handle every frame that
    /// arrived together in one go. Errors as `read_frame` would on the same bytes.
    pub fn buffered_frame(&mut self) -> Result<Option<OwnedFrame>, FrameError> {
        match parse_frame(self.buf.bytes(), self.max_frame)? {
            Some((frame, used)) => {
                let frame = frame.to_owned_frame();
                self.buf.consume(used);
                Ok(Some(frame))
            }
            None => Ok(None),
        }
    }

    /// The frame size limit.
    pub fn max_frame(&self) -> u32 {
        self.max_frame
    }

    /// Bytes read from the stream but not yet returned as frames.
    pub fn buffered(&self) -> &[u8] {
        self.buf.bytes()
    }

    /// The underlying reader.
    pub fn get_ref(&self) -> &R {
        &self.reader
    }

    /// The underlying reader, mutably. Reading from it directly skips the
    /// [`buffered`](Self::buffered) bytes.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.reader
    }

    /// The underlying reader; the [`buffered`](Self::buffered) bytes are lost.
    pub fn into_inner(self) -> R {
        self.reader
    }
}

/// Writes encoded frames to a byte stream, batching them.
///
/// Frames are encoded elsewhere (see [`crate::frame`]), possibly once for
/// many connections. Queue any number with [`queue`](Self::queue), or encode
/// straight into [`buffer_mut`](Self::buffer_mut), then
/// [`flush`](Self::flush) sends them all with one `write_all`.
#[derive(Debug)]
pub struct FrameWriter<W> {
    writer: W,
    buf: Vec<u8>,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    /// A writer with an empty queue.
    pub fn new(writer: W) -> Self {
        FrameWriter { writer, buf: Vec::new() }
    }

    /// Queues encoded bytes (one or more whole frames) for the next flush.
    pub fn queue(&mut self, frames: &[u8]) {
        self.buf.extend_from_slice(frames);
    }

    /// The queue itself, to encode frames into directly, for example with
    /// [`encode_unsigned`](crate::frame::encode_unsigned). Only whole frames
    /// may be appended.
    pub fn buffer_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Number of queued bytes.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Writes everything queued with one `write_all`, then flushes the
    /// stream. On error the queue is dropped: the connection is unusable.
    pub async fn flush(&mut self) -> Result<(), FrameError> {
        let result = self.write_and_flush().await;
        self.buf.clear();
        if self.buf.capacity() > SHRINK_ABOVE {
            self.buf.shrink_to(READ_CHUNK);
        }
        result
    }

    async fn write_and_flush(&mut self) -> Result<(), FrameError> {
        if !self.buf.is_empty() {
            self.writer.write_all(&self.buf).await?;
        }
        self.writer.flush().await?;
        Ok(())
    }

    /// Writes the queue plus `frame` (one or more whole encoded frames) and
    /// flushes. With an empty queue, `frame` is written without a copy.
    pub async fn write_frame(&mut self, frame: &[u8]) -> Result<(), FrameError> {
        if self.buf.is_empty() {
            self.writer.write_all(frame).await?;
            self.writer.flush().await?;
            Ok(())
        } else {
            self.queue(frame);
            self.flush().await
        }
    }

    /// Writes the queue plus all of `frames` with one `write_all`, and flushes.
    pub async fn write_frames<I>(&mut self, frames: I) -> Result<(), FrameError>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        for frame in frames {
            self.queue(frame.as_ref());
        }
        self.flush().await
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.writer
    }

    /// The underlying writer, mutably. Writing to it directly goes ahead of
    /// anything queued.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.writer
    }

    /// The underlying writer; queued bytes are dropped.
    pub fn into_inner(self) -> W {
        self.writer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{generate_nonce, KeyPair, Signer, Verifier};
    use crate::frame::{encode_message, encode_signed, encode_unsigned, Frame};
    use futures::io::Cursor;
    use futures::FutureExt;
    use serde::{Deserialize, Serialize};
    use std::io;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Msg {
        Hello { nonce: [u8; 32] },
        Register { role: String, port: u16 },
        Blob(Vec<u8>),
    }

    /// Yields `data` in pieces ending at `splits`, returning `Pending` (and
    /// waking itself) before each piece when `pending` is set; after the
    /// data, EOF, or `Pending` forever when `hang` is set.
    struct Pieces {
        data: Vec<u8>,
        splits: Vec<usize>,
        pos: usize,
        pending: bool,
        yielded: bool,
        hang: bool,
    }

    impl Pieces {
        fn new(data: Vec<u8>, splits: Vec<usize>) -> Self {
            Pieces { data, splits, pos: 0, pending: false, yielded: false, hang: false }
        }

        fn bytewise(data: Vec<u8>) -> Self {
            let splits = (1..data.len()).collect();
            Self::new(data, splits)
        }
    }

    impl AsyncRead for Pieces {
        fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            if self.pos == self.data.len() {
                return if self.hang { Poll::Pending } else { Poll::Ready(Ok(0)) };
            }
            if self.pending && !self.yielded {
                self.yielded = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.yielded = false;
            let pos = self.pos;
            let piece_end = self.splits.iter().copied().find(|&s| s > pos).unwrap_or(self.data.len());
            let n = (piece_end - pos).min(buf.len());
            buf[..n].copy_from_slice(&self.data[pos..pos + n]);
            self.pos += n;
            Poll::Ready(Ok(n))
        }
    }

    fn messages() -> Vec<Msg> {
        vec![Msg::Hello { nonce: [3; 32] }, Msg::Register { role: "web".into(), port: 80 }, Msg::Blob(vec![])]
    }

    /// Unsigned, signed, unsigned frames of [`messages`].
    fn stream() -> (Vec<u8>, [u8; 32]) {
        let nonce = generate_nonce();
        let mut signer = Signer::new(KeyPair::generate(), nonce);
        let mut out = Vec::new();
        let msgs = messages();
        encode_unsigned(&msgs[0], &mut out).unwrap();
        encode_signed(&msgs[1], &mut signer, &mut out).unwrap();
        encode_unsigned(&msgs[2], &mut out).unwrap();
        (out, nonce)
    }

    async fn read_all<R: AsyncRead + Unpin>(reader: &mut FrameReader<R>) -> Result<Vec<OwnedFrame>, FrameError> {
        let mut frames = Vec::new();
        while let Some(frame) = reader.read_frame().await? {
            frames.push(frame);
        }
        Ok(frames)
    }

    /// Checks the frames of [`stream`]: decoding, and (slow in debug
    /// builds) the signature when `nonce` is given.
    fn check(frames: &[OwnedFrame], nonce: Option<[u8; 32]>) {
        let decoded: Vec<Msg> = frames.iter().map(|f| f.decode().unwrap()).collect();
        assert_eq!(decoded, messages());
        let header = frames[1].signed.unwrap();
        if let Some(nonce) = nonce {
            assert!(Verifier::new(nonce).verify(&header, &frames[1].message).is_ok());
        }
    }

    #[async_std::test]
    async fn whole_stream() {
        let (bytes, nonce) = stream();
        let mut reader = FrameReader::new(Cursor::new(bytes));
        check(&read_all(&mut reader).await.unwrap(), Some(nonce));
        // EOF stays EOF.
        assert!(reader.read_frame().await.unwrap().is_none());
    }

    #[async_std::test]
    async fn split_at_every_byte_boundary() {
        let (bytes, _) = stream();
        let whole = read_all(&mut FrameReader::new(Cursor::new(bytes.clone()))).await.unwrap();
        check(&whole, None);
        for split in 1..bytes.len() {
            for pending in [false, true] {
                let mut pieces = Pieces::new(bytes.clone(), vec![split]);
                pieces.pending = pending;
                let frames = read_all(&mut FrameReader::new(pieces)).await.unwrap();
                assert_eq!(frames, whole, "split at {split}");
            }
        }
    }

    #[async_std::test]
    async fn one_byte_at_a_time() {
        let (bytes, nonce) = stream();
        let mut pieces = Pieces::bytewise(bytes);
        pieces.pending = true;
        check(&read_all(&mut FrameReader::new(pieces)).await.unwrap(), Some(nonce));
    }

    #[async_std::test]
    async fn frames_larger_than_a_chunk() {
        let blob = Msg::Blob((0..200_000u32).map(|i| i as u8).collect());
        let mut bytes = Vec::new();
        for _ in 0..3 {
            encode_unsigned(&blob, &mut bytes).unwrap();
        }
        encode_unsigned(&Msg::Blob(vec![1]), &mut bytes).unwrap();
        let splits = (1..bytes.len()).step_by(3001).collect();
        let mut reader = FrameReader::new(Pieces::new(bytes, splits));
        for _ in 0..3 {
            let frame = reader.read_frame().await.unwrap().unwrap();
            assert_eq!(frame.decode::<Msg>().unwrap(), blob);
            assert!(reader.buf.kept().len() <= LEN_PREFIX + DEFAULT_MAX_FRAME as usize);
        }
        let last = reader.read_frame().await.unwrap().unwrap();
        assert_eq!(last.decode::<Msg>().unwrap(), Msg::Blob(vec![1]));
        // Every byte read was handed out: the reader keeps no buffer.
        assert_eq!(reader.buf.kept().capacity(), 0);
        assert!(reader.read_frame().await.unwrap().is_none());
    }

    #[async_std::test]
    async fn clean_eof() {
        let mut reader = FrameReader::new(Cursor::new(Vec::new()));
        assert!(reader.read_frame().await.unwrap().is_none());
    }

    #[async_std::test]
    async fn truncated_anywhere_inside_a_frame() {
        let (bytes, _) = stream();
        let mut boundaries = vec![0];
        let mut rest = &bytes[..];
        while let Some((_, used)) = crate::frame::parse_frame(rest, DEFAULT_MAX_FRAME).unwrap() {
            boundaries.push(boundaries.last().unwrap() + used);
            rest = &rest[used..];
        }
        for end in 0..bytes.len() {
            let mut reader = FrameReader::new(Cursor::new(bytes[..end].to_vec()));
            let result = read_all(&mut reader).await;
            if boundaries.contains(&end) {
                assert!(result.is_ok(), "cut at boundary {end}");
            } else {
                assert!(matches!(result, Err(FrameError::Truncated)), "cut at {end}: {result:?}");
            }
        }
    }

    #[async_std::test]
    async fn four_gib_length_refused_immediately() {
        // Only the length prefix arrives, then the peer goes silent: the
        // reader must refuse at once, without waiting or allocating.
        let mut pieces = Pieces::new(vec![0xff; 4], vec![]);
        pieces.hang = true;
        let mut reader = FrameReader::new(pieces);
        let result = reader.read_frame().now_or_never();
        assert!(
            matches!(result, Some(Err(FrameError::TooLarge { len: 0xffff_ffff, max: DEFAULT_MAX_FRAME }))),
            "{result:?}"
        );
        assert!(reader.buf.kept().len() <= READ_CHUNK);
    }

    #[async_std::test]
    async fn configured_limit() {
        let mut bytes = Vec::new();
        encode_unsigned(&Msg::Blob(vec![0; 200]), &mut bytes).unwrap();
        let mut reader = FrameReader::with_max_frame(Cursor::new(bytes.clone()), 100);
        assert_eq!(reader.max_frame(), 100);
        assert!(matches!(reader.read_frame().await, Err(FrameError::TooLarge { max: 100, .. })));
        let mut reader = FrameReader::with_max_frame(Cursor::new(bytes), 300);
        assert!(reader.read_frame().await.unwrap().is_some());
    }

    #[async_std::test]
    async fn garbage_is_refused() {
        let mut reader = FrameReader::new(Cursor::new(vec![0, 0, 0, 1, 9]));
        assert!(matches!(reader.read_frame().await, Err(FrameError::UnknownKind { kind: 9 })));
        let mut reader = FrameReader::new(Cursor::new(vec![0, 0, 0, 0]));
        assert!(matches!(reader.read_frame().await, Err(FrameError::Empty)));
    }

    #[async_std::test]
    async fn preamble() {
        let mut bytes = Vec::new();
        send_preamble(&mut bytes).await.unwrap();
        bytes.extend([0, 0, 0, 2, 0, 5]);
        let mut cursor = Cursor::new(bytes);
        assert_eq!(read_preamble(&mut cursor).await.unwrap(), PROTOCOL_VERSION);
        // Nothing read ahead: the first frame follows.
        let frame = FrameReader::new(cursor).read_frame().await.unwrap().unwrap();
        assert_eq!(frame.decode::<u8>().unwrap(), 5);
    }

    #[async_std::test]
    async fn preamble_errors() {
        let mut json = Cursor::new(b"[\"register\",{}]\n".to_vec());
        match read_preamble(&mut json).await {
            Err(FrameError::BadMagic { found }) => assert_eq!(&found, b"[\"regist"),
            other => panic!("{other:?}"),
        }
        // A wrong magic is refused as soon as its 8 bytes are in.
        let mut pieces = Pieces::new(b"GET / HT".to_vec(), vec![]);
        pieces.hang = true;
        assert!(matches!(read_preamble(&mut pieces).now_or_never(), Some(Err(FrameError::BadMagic { .. }))));
        for end in 0..PREAMBLE_LEN {
            let mut bytes = MAGIC.to_vec();
            bytes.extend(PROTOCOL_VERSION.to_be_bytes());
            let mut cut = Cursor::new(bytes[..end].to_vec());
            assert!(matches!(read_preamble(&mut cut).await, Err(FrameError::Truncated)));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        #[test]
        fn any_chunking_reads_the_same_frames(
            lens in proptest::collection::vec(0usize..20_000, 1..6),
            splits in proptest::collection::vec(0usize..100_000, 0..40),
            pending in proptest::prelude::any::<bool>(),
        ) {
            // Frames both smaller and larger than READ_CHUNK.
            let blobs: Vec<Vec<u8>> = lens
                .iter()
                .map(|&len| (0..len).map(|i| i as u8).collect())
                .collect();
            let mut bytes = Vec::new();
            for blob in &blobs {
                encode_unsigned(&Msg::Blob(blob.clone()), &mut bytes).unwrap();
            }
            let mut splits: Vec<usize> = splits.into_iter().map(|s| s % bytes.len()).collect();
            splits.sort_unstable();
            let mut pieces = Pieces::new(bytes, splits);
            pieces.pending = pending;
            let frames = futures::executor::block_on(read_all(&mut FrameReader::new(pieces))).unwrap();
            let decoded: Vec<Msg> = frames.iter().map(|f| f.decode().unwrap()).collect();
            let expected: Vec<Msg> = blobs.into_iter().map(Msg::Blob).collect();
            proptest::prop_assert_eq!(decoded, expected);
        }
    }

    /// Counts `poll_write` calls.
    #[derive(Default)]
    struct CountingWriter {
        data: Vec<u8>,
        writes: usize,
        flushes: usize,
    }

    impl AsyncWrite for CountingWriter {
        fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.writes += 1;
            self.data.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.flushes += 1;
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[async_std::test]
    async fn batch_is_one_write() {
        // Encode once, share with many writers.
        let mut shared = Vec::new();
        encode_unsigned(&Msg::Blob(vec![7; 10]), &mut shared).unwrap();
        let shared: Arc<[u8]> = shared.into();

        let mut writer = FrameWriter::new(CountingWriter::default());
        writer.queue(&shared);
        encode_unsigned(&messages()[1], writer.buffer_mut()).unwrap();
        let message = encode_message(&messages()[0]).unwrap();
        Frame::unsigned(&message).encode(writer.buffer_mut()).unwrap();
        assert!(writer.pending() > 0);
        writer.flush().await.unwrap();
        assert_eq!(writer.pending(), 0);
        assert_eq!((writer.get_ref().writes, writer.get_ref().flushes), (1, 1));

        writer.write_frames([shared.clone(), shared.clone()]).await.unwrap();
        assert_eq!(writer.get_ref().writes, 2);
        writer.write_frame(&shared).await.unwrap();
        assert_eq!(writer.get_ref().writes, 3);

        let data = writer.into_inner().data;
        let frames = read_all(&mut FrameReader::new(Cursor::new(data))).await.unwrap();
        let decoded: Vec<Msg> = frames.iter().map(|f| f.decode().unwrap()).collect();
        let blob = Msg::Blob(vec![7; 10]);
        assert_eq!(
            decoded,
            [blob.clone(), messages()[1].clone(), messages()[0].clone(), blob.clone(), blob.clone(), blob]
        );
    }

    #[async_std::test]
    async fn loopback_tcp_handshake_and_signed_frames() {
        use async_std::net::{TcpListener, TcpStream};

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client_key = KeyPair::generate();
        let client_public = client_key.public();

        let hub = async_std::task::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut input = stream.clone();
            assert_eq!(read_preamble(&mut input).await.unwrap(), PROTOCOL_VERSION);
            let mut writer = FrameWriter::new(stream);
            send_preamble(writer.get_mut()).await.unwrap();
            let nonce = generate_nonce();
            encode_unsigned(&Msg::Hello { nonce }, writer.buffer_mut()).unwrap();
            writer.flush().await.unwrap();

            let mut reader = FrameReader::new(input);
            let mut verifier = Verifier::new(nonce);
            let mut seen = Vec::new();
            while let Some(frame) = reader.read_frame().await.unwrap() {
                let header = frame.signed.expect("client signs everything");
                let key = verifier.verify(&header, &frame.message).unwrap();
                seen.push((key, frame.decode::<Msg>().unwrap()));
            }
            seen
        });

        let stream = TcpStream::connect(addr).await.unwrap();
        let mut writer = FrameWriter::new(stream.clone());
        send_preamble(writer.get_mut()).await.unwrap();
        let mut input = stream;
        assert_eq!(read_preamble(&mut input).await.unwrap(), PROTOCOL_VERSION);
        let mut reader = FrameReader::new(input);
        let Msg::Hello { nonce } = reader.read_frame().await.unwrap().unwrap().decode().unwrap() else {
            panic!("expected hello");
        };
        let mut signer = Signer::new(client_key, nonce);
        let sent: Vec<Msg> = (0..50).map(|port| Msg::Register { role: format!("svc{port}"), port }).collect();
        for msg in &sent {
            encode_signed(msg, &mut signer, writer.buffer_mut()).unwrap();
        }
        writer.flush().await.unwrap();
        writer.get_mut().shutdown(std::net::Shutdown::Write).unwrap();

        let seen = hub.await;
        assert_eq!(seen.len(), sent.len());
        for ((key, msg), sent) in seen.iter().zip(&sent) {
            assert_eq!(key, &client_public);
            assert_eq!(msg, sent);
        }
    }
}
