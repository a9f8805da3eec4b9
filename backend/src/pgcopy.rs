//! Rows in PostgreSQL's binary `COPY` format (`COPY … FROM STDIN (FORMAT binary)`), for bulk writes that
//! must not pay for text parsing on the server: numbers, times and arrays travel as the server stores them.
//! The format is documented in the PostgreSQL manual, "COPY — Binary Format".

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Microseconds from the Unix epoch to PostgreSQL's epoch (2000-01-01 UTC).
pub const PG_EPOCH_US: i64 = 946_684_800_000_000;

/// Type oids of the array elements written here.
const FLOAT8_OID: i32 = 701;
const INT4_OID: i32 = 23;
const TEXT_OID: i32 = 25;
const TIMESTAMPTZ_OID: i32 = 1184;

/// A buffer of binary COPY data: the header, then rows, then [`BinaryRows::finish`] adds the trailer.
pub struct BinaryRows {
    buf: Vec<u8>,
}

impl BinaryRows {
    /// The header, with room for about `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity.max(32));
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags: no oids
        buf.extend_from_slice(&0i32.to_be_bytes()); // no header extension
        Self { buf }
    }

    /// Starts a row of `fields` fields.
    pub fn row(&mut self, fields: i16) -> &mut Self {
        self.buf.extend_from_slice(&fields.to_be_bytes());
        self
    }

    fn field(&mut self, bytes: &[u8]) -> &mut Self {
        // Field lengths are bounded by the callers' own sizes (names, rule lines): far below i32::MAX.
        self.buf
            .extend_from_slice(&i32::try_from(bytes.len()).unwrap_or(i32::MAX).to_be_bytes());
        self.buf.extend_from_slice(bytes);
        self
    }

    pub fn null(&mut self) -> &mut Self {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
        self
    }

    pub fn uuid(&mut self, v: Uuid) -> &mut Self {
        self.field(v.as_bytes())
    }

    pub fn int4(&mut self, v: i32) -> &mut Self {
        self.field(&v.to_be_bytes())
    }

    pub fn float8(&mut self, v: f64) -> &mut Self {
        self.field(&v.to_be_bytes())
    }

    /// A `timestamptz` (microsecond resolution).
    pub fn timestamptz(&mut self, v: DateTime<Utc>) -> &mut Self {
        self.field(&(v.timestamp_micros() - PG_EPOCH_US).to_be_bytes())
    }

    pub fn text(&mut self, v: &str) -> &mut Self {
        self.field(v.as_bytes())
    }

    pub fn text_or_null(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }

    /// A one-dimensional `float8[]`; `None` elements are SQL nulls.
    pub fn float8_array(
        &mut self,
        values: impl ExactSizeIterator<Item = Option<f64>>,
    ) -> &mut Self {
        self.array(FLOAT8_OID, values, |b, x| {
            b.extend_from_slice(&x.to_be_bytes())
        })
    }

    /// A one-dimensional `int4[]`; `None` elements are SQL nulls.
    pub fn int4_array(&mut self, values: impl ExactSizeIterator<Item = Option<i32>>) -> &mut Self {
        self.array(INT4_OID, values, |b, x| {
            b.extend_from_slice(&x.to_be_bytes())
        })
    }

    /// A one-dimensional `timestamptz[]` of epoch milliseconds (stored with microsecond resolution).
    pub fn timestamptz_millis_array(
        &mut self,
        values: impl ExactSizeIterator<Item = i64>,
    ) -> &mut Self {
        self.array(TIMESTAMPTZ_OID, values.map(Some), |b, ms: i64| {
            b.extend_from_slice(
                &(ms.saturating_mul(1000).saturating_sub(PG_EPOCH_US)).to_be_bytes(),
            );
        })
    }

    /// A one-dimensional `text[]`; `None` elements are SQL nulls.
    pub fn text_array<'a>(
        &mut self,
        values: impl ExactSizeIterator<Item = Option<&'a str>>,
    ) -> &mut Self {
        self.array(TEXT_OID, values, |b, s: &str| {
            b.extend_from_slice(s.as_bytes())
        })
    }

    /// A one-dimensional array of type `oid`: `put` writes an element's bytes, whose length is filled in.
    fn array<T>(
        &mut self,
        oid: i32,
        values: impl ExactSizeIterator<Item = Option<T>>,
        put: impl Fn(&mut Vec<u8>, T),
    ) -> &mut Self {
        let n = values.len();
        let len_at = self.buf.len();
        self.buf.extend_from_slice(&0i32.to_be_bytes()); // the field's length: set below
        self.buf.extend_from_slice(&i32::from(n > 0).to_be_bytes()); // dimensions
        let flags_at = self.buf.len();
        self.buf.extend_from_slice(&0i32.to_be_bytes()); // has nulls: set below
        self.buf.extend_from_slice(&oid.to_be_bytes());
        if n > 0 {
            self.buf
                .extend_from_slice(&i32::try_from(n).unwrap_or(i32::MAX).to_be_bytes());
            self.buf.extend_from_slice(&1i32.to_be_bytes()); // lower bound
        }
        let mut nulls = false;
        for v in values {
            match v {
                Some(x) => {
                    let at = self.buf.len();
                    self.buf.extend_from_slice(&0i32.to_be_bytes());
                    put(&mut self.buf, x);
                    let len = i32::try_from(self.buf.len() - at - 4).unwrap_or(i32::MAX);
                    self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
                }
                None => {
                    nulls = true;
                    self.buf.extend_from_slice(&(-1i32).to_be_bytes());
                }
            }
        }
        if nulls {
            self.buf[flags_at..flags_at + 4].copy_from_slice(&1i32.to_be_bytes());
        }
        let len = i32::try_from(self.buf.len() - len_at - 4).unwrap_or(i32::MAX);
        self.buf[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
        self
    }

    /// The bytes buffered, for sending in pieces; see [`BinaryRows::take_rows`].
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Takes what is buffered (to send it), leaving the buffer empty for more rows.
    pub fn take_rows(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// The rest of the data, with the trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_array_with_nulls_has_the_length_of_what_was_written() {
        let mut r = BinaryRows::with_capacity(0);
        let start = r.len();
        r.float8_array([Some(1.5), None, Some(-2.0)].into_iter());
        let bytes = r.take_rows();
        let field = &bytes[start..];
        let len = i32::from_be_bytes(field[..4].try_into().unwrap()) as usize;
        assert_eq!(len, field.len() - 4);
        // ndim 1, has nulls, float8, 3 elements from 1
        let ints: Vec<i32> = field[4..24]
            .chunks(4)
            .map(|c| i32::from_be_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(ints, [1, 1, 701, 3, 1]);
        let mut e = BinaryRows::with_capacity(0);
        let start = e.len();
        e.float8_array(std::iter::empty());
        let bytes = e.take_rows();
        assert_eq!(
            &bytes[start..],
            &[0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 189]
        );
    }
}
