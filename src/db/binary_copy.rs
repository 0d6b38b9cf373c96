//! An encoder of PostgreSQL's binary COPY format, for bulk inserts that skip the cost of
//! parsing text and of binding one array per column.
//!
//! The format is documented in PostgreSQL's manual, under "COPY", section "Binary Format":
//! a fixed header, then per row a field count followed by each field's byte length and
//! bytes in the type's binary send format, then a trailer.

use chrono::{DateTime, Utc};

/// The signature, the flags field (no OIDs) and the header extension length (none).
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// PostgreSQL's epoch, 2000-01-01 00:00:00 UTC, in microseconds since the Unix epoch.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The field count of -1 that ends the data.
const TRAILER: &[u8] = &(-1i16).to_be_bytes();

/// The binary COPY data of a batch of rows, built in memory.
pub struct BinaryCopy {
    buffer: Vec<u8>,
}

impl BinaryCopy {
    /// Start the data with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut buffer = Vec::with_capacity(capacity + HEADER.len() + TRAILER.len());
        buffer.extend_from_slice(HEADER);
        Self { buffer }
    }

    /// Start a row of `fields` fields. The caller then appends exactly that many.
    pub fn row(&mut self, fields: i16) {
        self.buffer.extend_from_slice(&fields.to_be_bytes());
    }

    pub fn int8(&mut self, value: i64) {
        self.field(&value.to_be_bytes());
    }

    pub fn int4(&mut self, value: i32) {
        self.field(&value.to_be_bytes());
    }

    pub fn bool(&mut self, value: bool) {
        self.field(&[u8::from(value)]);
    }

    /// Append a `text` field. PostgreSQL rejects NUL in text, so callers pass cleaned strings.
    pub fn text(&mut self, value: &str) {
        self.field(value.as_bytes());
    }

    /// Append a `timestamptz` field, sent as microseconds since 2000-01-01 00:00:00 UTC.
    pub fn timestamptz(&mut self, value: DateTime<Utc>) {
        let micros = value.timestamp_micros().saturating_sub(POSTGRES_EPOCH_MICROS);
        self.field(&micros.to_be_bytes());
    }

    /// End the data and return its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.buffer.extend_from_slice(TRAILER);
        self.buffer
    }

    fn field(&mut self, bytes: &[u8]) {
        // The format cannot carry a field over i32::MAX bytes. Such a field would get a
        // wrong length, and PostgreSQL would reject the data and so the batch. The Kafka
        // message size limit keeps every text of a result far below it.
        let length = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
        self.buffer.extend_from_slice(&length.to_be_bytes());
        self.buffer.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn encodes_header_fields_and_trailer() {
        let mut copy = BinaryCopy::with_capacity(0);
        copy.row(3);
        copy.int4(7);
        copy.bool(true);
        copy.text("ab");
        let bytes = copy.finish();

        let mut expected = HEADER.to_vec();
        expected.extend_from_slice(&[0, 3]);
        expected.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 7]);
        expected.extend_from_slice(&[0, 0, 0, 1, 1]);
        expected.extend_from_slice(&[0, 0, 0, 2, b'a', b'b']);
        expected.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn timestamptz_counts_from_2000() {
        let mut copy = BinaryCopy::with_capacity(0);
        copy.timestamptz(Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 1).unwrap());
        let bytes = copy.finish();
        let field = &bytes[HEADER.len()..HEADER.len() + 12];
        assert_eq!(&field[..4], &8i32.to_be_bytes());
        assert_eq!(&field[4..], &1_000_000i64.to_be_bytes());
    }
}
