//! The framed stream a streaming call (or `exec`) answers with, and the
//! HTTP body types both sides send: [`BoxBody`], and one fed by a channel.
//!
//! A streaming call's response is a sequence of frames, each a one-byte
//! type, a four-byte big-endian length and the payload: `1` stdout bytes,
//! `2` stderr bytes, `3` the final answer as JSON. Frames keep the guest's
//! bytes exact (no text encoding), and the daemon writes each as the guest
//! writes, so the client prints output while the Run runs. The final
//! answer is a [`super::StreamEnd`].

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// A frame of the guest's stdout bytes.
pub const FRAME_STDOUT: u8 = 1;
/// A frame of the guest's stderr bytes.
pub const FRAME_STDERR: u8 = 2;
/// The last frame: the final answer as JSON.
pub const FRAME_END: u8 = 3;

/// One frame: its type, its length, its payload.
pub fn frame(kind: u8, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + payload.len());
    b.extend_from_slice(&[kind]);
    b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    b.extend_from_slice(payload);
    b.freeze()
}

/// Splits a byte stream back into frames.
#[derive(Default)]
pub struct FrameReader {
    buf: BytesMut,
}

impl FrameReader {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    pub fn next_frame(&mut self) -> Option<(u8, Bytes)> {
        if self.buf.len() < 5 {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if self.buf.len() < 5 + len {
            return None;
        }
        let kind = self.buf[0];
        self.buf.advance(5);
        Some((kind, self.buf.split_to(len).freeze()))
    }
}

/// A body whose chunks arrive over a channel.
pub struct ChannelBody(pub mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// The body type of every request and answer.
pub type BoxBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// A body of bytes known up front.
pub fn full(b: impl Into<Bytes>) -> BoxBody {
    http_body_util::Full::new(b.into()).boxed()
}

/// A body whose chunks are sent down the returned channel.
pub fn channel(capacity: usize) -> (mpsc::Sender<Bytes>, BoxBody) {
    let (tx, rx) = mpsc::channel(capacity);
    (tx, ChannelBody(rx).boxed())
}
