//! The record codec: how one record is laid out in a segment file.
//!
//! ```text
//!  0       4       8     9        17       25        29          29+K      33+K
//!  ┌───────┬───────┬─────┬────────┬────────┬─────────┬───────────┬─────────┬─────────┐
//!  │  len  │ crc32c│attrs│ offset │  ts_ms │ key_len │ key bytes │ val_len │ value … │
//!  │  u32  │  u32  │ u8  │  u64   │  i64   │   u32   │   K       │   u32   │   V     │
//!  └───────┴───────┴─────┴────────┴────────┴─────────┴───────────┴─────────┴─────────┘
//!          └──────────── crc32c covers everything after the checksum ────────────────┘
//! ```
//!
//! All integers are little-endian. `len` counts the bytes after the checksum
//! (the body). A length of `u32::MAX` marks a `None` key or value (a value of
//! `None` is a tombstone). `attrs` bit 0 marks the last record of an append
//! batch, so recovery can drop a batch that was only partly written.

use bytes::{BufMut, Bytes};

/// Bytes before the body: length and checksum.
pub(crate) const HEADER_LEN: usize = 8;
/// The body of a record with no key and no value.
pub(crate) const MIN_BODY_LEN: usize = 1 + 8 + 8 + 4 + 4;
/// `attrs` bit: this record ends its append batch.
const ATTR_LAST_IN_BATCH: u8 = 1;
/// Length that marks `None`.
const NONE_LEN: u32 = u32::MAX;

/// A record as decoded from a segment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DecodedRecord {
    pub(crate) offset: u64,
    pub(crate) timestamp_ms: i64,
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    /// Whether the record ends its append batch.
    pub(crate) last_in_batch: bool,
    /// Encoded size, header included.
    pub(crate) encoded_len: usize,
}

/// The outcome of decoding the bytes at a record boundary.
#[derive(Debug)]
pub(crate) enum Decode {
    /// A valid record.
    Record(DecodedRecord),
    /// The buffer holds less than the record's declared size (this many bytes).
    NeedMore(usize),
    /// The bytes are not a valid record.
    Invalid(String),
}

/// The encoded size of a record with this key and value.
pub(crate) fn encoded_len(key: Option<&[u8]>, value: Option<&[u8]>) -> usize {
    HEADER_LEN + MIN_BODY_LEN + key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len)
}

/// Appends one encoded record to `out`. The caller has checked that the
/// record's size fits in a `u32` (the log's record size limit is lower).
pub(crate) fn encode(
    out: &mut Vec<u8>,
    offset: u64,
    timestamp_ms: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    last_in_batch: bool,
) {
    let start = out.len();
    let body_len = encoded_len(key, value) - HEADER_LEN;
    out.put_u32_le(body_len as u32);
    out.put_u32_le(0); // checksum, filled below
    out.put_u8(if last_in_batch { ATTR_LAST_IN_BATCH } else { 0 });
    out.put_u64_le(offset);
    out.put_i64_le(timestamp_ms);
    for field in [key, value] {
        match field {
            Some(bytes) => {
                out.put_u32_le(bytes.len() as u32);
                out.put_slice(bytes);
            }
            None => out.put_u32_le(NONE_LEN),
        }
    }
    let crc = crc32c::crc32c(&out[start + HEADER_LEN..]);
    out[start + 4..start + HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(bytes)
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(bytes)
}

/// Decodes the record at the start of `buf`. Key and value share `buf`'s
/// memory.
pub(crate) fn decode(buf: &Bytes) -> Decode {
    if buf.len() < HEADER_LEN {
        return Decode::NeedMore(HEADER_LEN);
    }
    let body_len = u32_at(buf, 0) as usize;
    if body_len < MIN_BODY_LEN {
        return Decode::Invalid(format!("declared body length {body_len} is below the minimum {MIN_BODY_LEN}"));
    }
    let total = HEADER_LEN + body_len;
    if buf.len() < total {
        return Decode::NeedMore(total);
    }
    let stored_crc = u32_at(buf, 4);
    let body = &buf[HEADER_LEN..total];
    let crc = crc32c::crc32c(body);
    if crc != stored_crc {
        return Decode::Invalid(format!("checksum mismatch (stored {stored_crc:#010x}, computed {crc:#010x})"));
    }
    let attrs = body[0];
    if attrs & !ATTR_LAST_IN_BATCH != 0 {
        return Decode::Invalid(format!("unknown attribute bits {attrs:#04x}"));
    }
    let offset = u64_at(body, 1);
    let timestamp_ms = u64_at(body, 9) as i64;
    let mut at = 17;
    let mut fields = [None, None];
    for field in &mut fields {
        if at + 4 > body.len() {
            return Decode::Invalid("record body ends inside a length field".into());
        }
        let len = u32_at(body, at);
        at += 4;
        if len != NONE_LEN {
            let len = len as usize;
            if at + len > body.len() {
                return Decode::Invalid(format!("field of {len} bytes runs past the record's end"));
            }
            let start = HEADER_LEN + at;
            *field = Some(buf.slice(start..start + len));
            at += len;
        }
    }
    if at != body.len() {
        return Decode::Invalid(format!("{} trailing bytes after the value", body.len() - at));
    }
    let [key, value] = fields;
    Decode::Record(DecodedRecord {
        offset,
        timestamp_ms,
        key,
        value,
        last_in_batch: attrs & ATTR_LAST_IN_BATCH != 0,
        encoded_len: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(key: Option<&[u8]>, value: Option<&[u8]>, last: bool) -> Bytes {
        let mut out = Vec::new();
        encode(&mut out, 42, -7, key, value, last);
        assert_eq!(out.len(), encoded_len(key, value));
        Bytes::from(out)
    }

    #[test]
    fn round_trips_all_field_shapes() {
        for (key, value) in
            [(Some(&b"k"[..]), Some(&b"value"[..])), (None, Some(&b""[..])), (Some(&b""[..]), None), (None, None)]
        {
            for last in [false, true] {
                let buf = encoded(key, value, last);
                let Decode::Record(record) = decode(&buf) else { panic!("decodes") };
                assert_eq!(record.offset, 42);
                assert_eq!(record.timestamp_ms, -7);
                assert_eq!(record.key.as_deref(), key);
                assert_eq!(record.value.as_deref(), value);
                assert_eq!(record.last_in_batch, last);
                assert_eq!(record.encoded_len, buf.len());
            }
        }
    }

    #[test]
    fn every_flipped_bit_is_detected_and_short_input_asks_for_more() {
        let buf = encoded(Some(b"key"), Some(b"value"), true);
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.to_vec();
                bad[byte] ^= 1 << bit;
                let bad = Bytes::from(bad);
                assert!(!matches!(decode(&bad), Decode::Record(_)), "flip at byte {byte} bit {bit} went unnoticed");
            }
        }
        for cut in 0..buf.len() {
            assert!(matches!(decode(&buf.slice(..cut)), Decode::NeedMore(_)), "cut at {cut}");
        }
    }
}
