//! `decode` on arbitrary bytes, fed in arbitrary splits, with a small `max_payload`.
//!
//! Properties: no panic; the messages (and the error, if any) do not depend on how the stream was
//! split; every decoded message re-encodes to bytes that decode to the same value, and encoding is
//! canonical (encode ∘ decode ∘ encode = encode).
//!
//! The whole input is the byte stream, so the seed corpus (`fuzz/seed_corpus.sh`) is just the
//! protocol vectors; the split points and the limit come from a PRNG seeded with a hash of the
//! input, so every mutation also tries new splits.

#![no_main]

use bytes::BytesMut;
use framewire_proto::{decode, DecodeError, Message, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

/// Limits tried: 0 (only empty payloads), tiny, one protocol vector, and a few KiB.
const LIMITS: [u32; 5] = [0, 16, 64, 300, 4096];

struct Rng(u64);

impl Rng {
    fn new(data: &[u8]) -> Rng {
        // FNV-1a over the input: deterministic, so a crash reproduces from its input file.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in data {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// What decoding a stream produced: the messages, then the error that stopped it (if any), or how
/// many bytes were left waiting for the rest of a message. (After an error, what is left in the
/// buffer depends on how much had arrived, so it is not compared.)
#[derive(Debug, PartialEq)]
struct Outcome {
    messages: Vec<Message>,
    error: Option<DecodeError>,
    left: usize,
}

fn decode_chunks<'a>(chunks: impl Iterator<Item = &'a [u8]>, max: u32) -> Outcome {
    let mut buf = BytesMut::new();
    let mut messages = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decode(&mut buf, max) {
                Ok(Some(m)) => messages.push(m),
                Ok(None) => break,
                Err(e) => {
                    return Outcome {
                        messages,
                        error: Some(e),
                        left: 0,
                    }
                }
            }
        }
    }
    Outcome {
        messages,
        error: None,
        left: buf.len(),
    }
}

fn check_round_trip(m: &Message, max: u32) {
    let bytes = m.to_bytes().expect("a decoded message encodes");
    assert_eq!(bytes.len(), HEADER_LEN + m.payload_len());
    let mut buf = BytesMut::from(&bytes[..]);
    let again = decode(&mut buf, max)
        .expect("re-encoded message decodes")
        .expect("re-encoded message is whole");
    assert!(buf.is_empty(), "re-encoded message has trailing bytes");
    assert_eq!(&again, m, "decode(encode(m)) != m");
    assert_eq!(
        again.to_bytes().unwrap(),
        bytes,
        "encoding is not canonical"
    );
}

fuzz_target!(|data: &[u8]| {
    let mut rng = Rng::new(data);
    let max = LIMITS[(rng.next() % LIMITS.len() as u64) as usize];

    let whole = decode_chunks(std::iter::once(data), max);

    // The same bytes in random pieces: mostly tiny (1..8 bytes, splitting headers), sometimes big.
    let mut pieces = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let n = match rng.next() % 4 {
            0 => 1,
            1 => 1 + (rng.next() % 8) as usize,
            2 => 1 + (rng.next() % 64) as usize,
            _ => 1 + (rng.next() % 1024) as usize,
        };
        let end = (at + n).min(data.len());
        pieces.push(&data[at..end]);
        at = end;
    }
    let split = decode_chunks(pieces.into_iter(), max);
    assert_eq!(whole, split, "decoding depends on how the stream was split");

    for m in &whole.messages {
        check_round_trip(m, max);
    }
});
