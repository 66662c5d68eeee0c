//! Length-prefixed frames (4-byte big-endian length) for the API socket.
//!
//! Unlike `LengthDelimitedCodec`, an oversized frame does not poison the stream: its bytes are
//! skipped as they arrive and the decoder yields `Frame::TooLarge`, so the server can reply
//! with an error and keep the connection.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Data(Bytes),
    /// A frame of this many bytes was announced and skipped.
    TooLarge(usize),
}

pub struct FrameCodec {
    max: usize,
    /// Bytes of an oversized frame still to skip.
    discarding: usize,
    discarded_len: usize,
}

impl FrameCodec {
    pub fn new(max: usize) -> FrameCodec {
        FrameCodec { max, discarding: 0, discarded_len: 0 }
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, Self::Error> {
        if self.discarding > 0 {
            let n = self.discarding.min(src.len());
            src.advance(n);
            self.discarding -= n;
            if self.discarding > 0 {
                return Ok(None);
            }
            return Ok(Some(Frame::TooLarge(self.discarded_len)));
        }
        if src.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
        if len > self.max {
            src.advance(4);
            self.discarding = len;
            self.discarded_len = len;
            return self.decode(src);
        }
        if src.len() < 4 + len {
            src.reserve(4 + len - src.len());
            return Ok(None);
        }
        src.advance(4);
        Ok(Some(Frame::Data(src.split_to(len).freeze())))
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = std::io::Error;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), Self::Error> {
        let len = u32::try_from(item.len()).map_err(|_| std::io::Error::other("frame longer than 4 GiB"))?;
        dst.reserve(4 + item.len());
        dst.put_u32(len);
        dst.extend_from_slice(&item);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(parts: &[&[u8]]) -> BytesMut {
        let mut b = BytesMut::new();
        for p in parts {
            b.put_u32(p.len() as u32);
            b.extend_from_slice(p);
        }
        b
    }

    #[test]
    fn frames_split_across_reads_come_out_whole() {
        let all = framed(&[b"hello", b"", b"world"]);
        let mut codec = FrameCodec::new(16);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for byte in all.iter() {
            buf.put_u8(*byte);
            while let Some(f) = codec.decode(&mut buf).unwrap() {
                out.push(f);
            }
        }
        assert_eq!(out, [Frame::Data("hello".into()), Frame::Data("".into()), Frame::Data("world".into())]);
    }

    #[test]
    fn an_oversized_frame_is_skipped_and_the_next_one_still_decodes() {
        let big = vec![b'x'; 100];
        let mut buf = framed(&[&big, b"next"]);
        let mut codec = FrameCodec::new(16);
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(Frame::TooLarge(100)));
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(Frame::Data("next".into())));
        // The same when the oversized body trickles in.
        let mut codec = FrameCodec::new(16);
        let all = framed(&[&big, b"again"]);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in all.chunks(7) {
            buf.extend_from_slice(chunk);
            while let Some(f) = codec.decode(&mut buf).unwrap() {
                out.push(f);
            }
        }
        assert_eq!(out, [Frame::TooLarge(100), Frame::Data("again".into())]);
    }

    #[test]
    fn encode_then_decode_is_identity() {
        let mut codec = FrameCodec::new(1024);
        let mut buf = BytesMut::new();
        codec.encode(Bytes::from_static(b"{\"id\":1}"), &mut buf).unwrap();
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(Frame::Data(Bytes::from_static(b"{\"id\":1}"))));
        assert!(buf.is_empty());
    }
}
