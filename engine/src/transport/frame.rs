//! TCP framing of the protocol's messages: each message behind a 2-byte big-endian length, so
//! a stream carries exactly the datagrams the UDP path would. Sans-IO: bytes in, messages out.

use crate::proto::wire::DATA_HEADER_LEN;

/// Bytes of the length prefix.
pub const LEN_PREFIX: usize = 2;
/// The largest message either end sends: a data frame at the largest MTU the config allows.
/// A longer frame is skipped and counted, never buffered.
pub const MAX_MESSAGE: usize = DATA_HEADER_LEN + 9000;

/// Appends `msg` as one frame to `out`; false (and nothing appended) if it is too long.
pub fn encode(msg: &[u8], out: &mut Vec<u8>) -> bool {
    if msg.len() > MAX_MESSAGE {
        return false;
    }
    out.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    out.extend_from_slice(msg);
    true
}

/// Cuts a byte stream into messages. Holds at most one partial frame (≤ `MAX_MESSAGE` + 2
/// bytes) plus what one `push` brought.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Where the next unread byte of `buf` is.
    start: usize,
    /// Bytes of an oversized frame still to throw away.
    skip: usize,
    oversized: u64,
}

impl FrameDecoder {
    /// Bytes read from the stream.
    pub fn push(&mut self, mut bytes: &[u8]) {
        if self.skip > 0 {
            let n = self.skip.min(bytes.len());
            self.skip -= n;
            bytes = &bytes[n..];
        }
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message, if one is buffered. Oversized frames are skipped (counted) as
    /// they go past.
    pub fn next_message(&mut self) -> Option<&[u8]> {
        loop {
            let rest = &self.buf[self.start..];
            if rest.len() < LEN_PREFIX {
                return None;
            }
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            if len > MAX_MESSAGE {
                self.oversized += 1;
                let have = rest.len() - LEN_PREFIX;
                let dropped = have.min(len);
                self.start += LEN_PREFIX + dropped;
                self.skip = len - dropped;
                if self.skip > 0 {
                    return None;
                }
                continue;
            }
            if rest.len() < LEN_PREFIX + len {
                return None;
            }
            let from = self.start + LEN_PREFIX;
            self.start = from + len;
            return Some(&self.buf[from..from + len]);
        }
    }

    /// Frames skipped for being longer than `MAX_MESSAGE`.
    pub fn oversized(&self) -> u64 {
        self.oversized
    }

    /// Bytes held for a frame not yet complete.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(d: &mut FrameDecoder) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| d.next_message().map(<[u8]>::to_vec)).collect()
    }

    #[test]
    fn messages_survive_any_split_of_the_stream() {
        let msgs: Vec<Vec<u8>> = vec![vec![1; 64], vec![], vec![5; 1420], vec![2; 36]];
        let mut stream = Vec::new();
        for m in &msgs {
            assert!(encode(m, &mut stream));
        }
        for chunk in [1, 2, 3, 7, 100, stream.len()] {
            let mut d = FrameDecoder::default();
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                d.push(piece);
                got.extend(all(&mut d));
            }
            assert_eq!(got, msgs, "chunks of {chunk}");
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn an_oversized_frame_is_skipped_and_counted_and_the_stream_goes_on() {
        let mut stream = Vec::new();
        encode(&[9; 10], &mut stream);
        let big = MAX_MESSAGE + 1;
        stream.extend_from_slice(&(big as u16).to_be_bytes());
        stream.extend(std::iter::repeat_n(0xee, big));
        encode(&[7; 20], &mut stream);
        for chunk in [1, 500, stream.len()] {
            let mut d = FrameDecoder::default();
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                d.push(piece);
                got.extend(all(&mut d));
                assert!(d.buffered() <= MAX_MESSAGE + LEN_PREFIX + chunk, "never holds the big frame");
            }
            assert_eq!(got, [vec![9; 10], vec![7; 20]], "chunks of {chunk}");
            assert_eq!(d.oversized(), 1);
        }
        let mut out = Vec::new();
        assert!(!encode(&vec![0; MAX_MESSAGE + 1], &mut out) && out.is_empty());
        assert!(encode(&vec![0; MAX_MESSAGE], &mut out) && out.len() == MAX_MESSAGE + LEN_PREFIX);
    }

    #[test]
    fn a_partial_frame_waits_for_the_rest() {
        let mut d = FrameDecoder::default();
        d.push(&[0]);
        assert_eq!(d.next_message(), None);
        d.push(&[3, 1, 2]);
        assert_eq!(d.next_message(), None);
        d.push(&[3, 0]);
        assert_eq!(d.next_message(), Some(&[1, 2, 3][..]));
        assert_eq!(d.next_message(), None);
        assert_eq!(d.buffered(), 1, "the first byte of the next length");
    }
}
