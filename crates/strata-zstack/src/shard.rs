//! Streaming Zarr v3 `sharding_indexed` shards.
//!
//! A shard is its encoded inner chunks, in any order, followed by the index: for each inner
//! chunk in C order of the inner grid, its offset and length as two little-endian `u64`
//! (both `u64::MAX` for a missing chunk), then the index codecs' output (`crc32c` appends 4
//! bytes). So the writer appends chunks as they come, keeps 16 bytes per chunk, and writes the
//! index once at the end: no shard is ever held in memory. Compression and the checksum use
//! zarrs' codecs.

use crate::error::{Error, Result};
use std::borrow::Cow;
use std::io::Write;
use zarrs::array::codec::{Crc32cCodec, ZstdCodec};
use zarrs::array::{BytesToBytesCodecTraits, CodecOptions};

/// Marks a chunk the shard does not hold.
const MISSING: u64 = u64::MAX;

/// The inner-chunk compressor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// zstd at a level (1-22; 3 is zstd's default).
    Zstd(i32),
    /// Stored as is.
    None,
}

impl Compression {
    /// The codec entries that follow the `bytes` codec in the array metadata.
    #[must_use]
    pub fn codecs_json(self) -> Vec<serde_json::Value> {
        match self {
            Self::Zstd(level) => vec![serde_json::json!({
                "name": "zstd",
                "configuration": {"level": level, "checksum": false}
            })],
            Self::None => Vec::new(),
        }
    }
}

/// Encodes inner chunks (raw little-endian bytes in, stored bytes out).
#[derive(Debug)]
pub struct ChunkEncoder {
    zstd: Option<ZstdCodec>,
    options: CodecOptions,
}

impl ChunkEncoder {
    /// An encoder for `compression`.
    #[must_use]
    pub fn new(compression: Compression) -> Self {
        Self {
            zstd: match compression {
                Compression::Zstd(level) => Some(ZstdCodec::new(level, false)),
                Compression::None => None,
            },
            options: CodecOptions::default(),
        }
    }

    /// Encodes one chunk.
    ///
    /// # Errors
    /// [`Error::Codec`] if the compressor fails.
    pub fn encode(&self, raw: Vec<u8>) -> Result<Vec<u8>> {
        match &self.zstd {
            None => Ok(raw),
            Some(z) => z
                .encode(Cow::Owned(raw), &self.options)
                .map(Cow::into_owned)
                .map_err(|e| Error::Codec(e.to_string())),
        }
    }
}

/// Where a shard's bytes go, in order: any [`Write`], or a store's put stream.
pub trait ShardOutput {
    /// Appends `bytes` (owned, so that a stream can keep them without a copy).
    ///
    /// # Errors
    /// An I/O or store error.
    fn put(&mut self, bytes: Vec<u8>) -> Result<()>;
}

impl<W: Write> ShardOutput for W {
    fn put(&mut self, bytes: Vec<u8>) -> Result<()> {
        self.write_all(&bytes).map_err(|e| Error::io("shard", e))
    }
}

/// Writes one shard to `out`: encoded chunks appended in any order, the index at the end.
#[derive(Debug)]
pub struct ShardWriter<W: ShardOutput> {
    out: W,
    offset: u64,
    /// Offset and length per inner chunk, C order.
    index: Vec<[u64; 2]>,
}

impl<W: ShardOutput> ShardWriter<W> {
    /// A writer for a shard of `chunks` inner chunks.
    #[must_use]
    pub fn new(out: W, chunks: usize) -> Self {
        Self {
            out,
            offset: 0,
            index: vec![[MISSING, MISSING]; chunks],
        }
    }

    /// Appends the encoded bytes of inner chunk `chunk` (its C-order position in the shard).
    ///
    /// # Errors
    /// [`Error::Config`] if the position is out of range or already written; an I/O error.
    pub fn append(&mut self, chunk: usize, encoded: Vec<u8>) -> Result<()> {
        let slot = self
            .index
            .get_mut(chunk)
            .ok_or_else(|| Error::Config(format!("inner chunk {chunk} is outside the shard")))?;
        if slot[0] != MISSING {
            return Err(Error::Config(format!("inner chunk {chunk} written twice")));
        }
        let len = encoded.len() as u64;
        self.out.put(encoded)?;
        *slot = [self.offset, len];
        self.offset += len;
        Ok(())
    }

    /// The output the chunks go to (for example to flush and sync it part way).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Writes the index (with its crc32c) and returns the writer and the shard's size.
    ///
    /// # Errors
    /// An I/O or codec error.
    pub fn finish(mut self) -> Result<(W, u64)> {
        let index = encode_index(&self.index)?;
        let len = index.len() as u64;
        self.out.put(index)?;
        Ok((self.out, self.offset + len))
    }
}

/// The index bytes: little-endian offset/length pairs, then their crc32c.
fn encode_index(index: &[[u64; 2]]) -> Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(index.len() * 16 + 4);
    for [offset, len] in index {
        raw.extend_from_slice(&offset.to_le_bytes());
        raw.extend_from_slice(&len.to_le_bytes());
    }
    Crc32cCodec::new()
        .encode(Cow::Owned(raw), &CodecOptions::default())
        .map(Cow::into_owned)
        .map_err(|e| Error::Codec(e.to_string()))
}

/// The `sharding_indexed` codec entry of an array whose inner chunks have `chunk_shape`.
#[must_use]
pub fn sharding_codec_json(chunk_shape: &[u64], compression: Compression) -> serde_json::Value {
    let mut inner =
        vec![serde_json::json!({"name": "bytes", "configuration": {"endian": "little"}})];
    inner.extend(compression.codecs_json());
    serde_json::json!({
        "name": "sharding_indexed",
        "configuration": {
            "chunk_shape": chunk_shape,
            "codecs": inner,
            "index_codecs": [
                {"name": "bytes", "configuration": {"endian": "little"}},
                {"name": "crc32c"}
            ],
            "index_location": "end"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_layout_and_checksum() {
        let mut w = ShardWriter::new(Vec::new(), 3);
        w.append(2, b"abc".to_vec()).expect("append");
        w.append(0, b"de".to_vec()).expect("append");
        assert!(w.append(0, b"x".to_vec()).is_err());
        assert!(w.append(3, b"x".to_vec()).is_err());
        let (bytes, size) = w.finish().expect("finish");
        assert_eq!(size as usize, bytes.len());
        assert_eq!(bytes.len(), 5 + 3 * 16 + 4);
        let idx = &bytes[5..5 + 48];
        let word = |i: usize| u64::from_le_bytes(idx[i * 8..i * 8 + 8].try_into().expect("8"));
        assert_eq!([word(0), word(1)], [3, 2]);
        assert_eq!([word(2), word(3)], [MISSING, MISSING]);
        assert_eq!([word(4), word(5)], [0, 3]);
        // crc32c of the index, little-endian (RFC 3720 polynomial; known value of "123456789"
        // is 0xE3069283).
        let check = encode_index(&[]).expect("empty");
        assert_eq!(check, 0u32.to_le_bytes());
        let crc = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().expect("4"));
        assert_eq!(crc, crc32c_reference(idx));
    }

    /// Bitwise CRC-32C, the reference the zarrs codec must agree with.
    fn crc32c_reference(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn reference_crc_is_right() {
        assert_eq!(crc32c_reference(b"123456789"), 0xE306_9283);
    }
}
