//! The byte-level conventions shared by every tern-kv encoding: little-endian integers, `u32`
//! length prefixes for byte strings, a flag byte for options, and a bounds-checked reader that
//! turns every short or malformed input into a [`DecodeError`] instead of a panic.

use bytes::Bytes;

use crate::command::DecodeError;

/// Appends a `u32` little endian.
pub(crate) fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// Appends a `u64` little endian.
pub(crate) fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// Appends a length-prefixed byte string.
///
/// Panics if `bytes` is 4 GiB or longer: only the encoders of in-memory values call this, and
/// the limits (checked at the edge) keep every key and value far below that.
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, length_u32(bytes.len()));
    out.extend_from_slice(bytes);
}

/// Appends an option: a flag byte (0 absent, 1 present), then the bytes when present.
pub(crate) fn put_option(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => out.push(0),
        Some(bytes) => {
            out.push(1);
            put_bytes(out, bytes);
        }
    }
}

/// A count or length as the `u32` the encoding stores. Lengths of 4 GiB and more cannot be
/// encoded; the limits keep every real value far below that, so reaching it is a caller bug.
pub(crate) fn length_u32(length: usize) -> u32 {
    u32::try_from(length)
        .expect("tern-kv encodings store lengths as u32; this one is 4 GiB or more")
}

/// A cursor over an input that checks every read against the bytes left.
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    offset: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `input`, reporting errors about `what` ("command", "result", ...).
    pub(crate) fn new(input: &'a [u8], what: &'static str) -> Reader<'a> {
        Reader {
            input,
            offset: 0,
            what,
        }
    }

    /// Where the next read starts.
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.input.len() - self.offset
    }

    /// An error at the current offset.
    pub(crate) fn error(&self, detail: String) -> DecodeError {
        self.error_at(self.offset, detail)
    }

    /// An error at `offset`.
    pub(crate) fn error_at(&self, offset: usize, detail: String) -> DecodeError {
        DecodeError {
            what: self.what,
            offset,
            detail,
        }
    }

    /// The next `length` bytes, described as `field` in the error when too few are left.
    pub(crate) fn take(&mut self, length: usize, field: &str) -> Result<&'a [u8], DecodeError> {
        if length > self.remaining() {
            return Err(self.error(format!(
                "{field} needs {length} bytes but only {} are left",
                self.remaining()
            )));
        }
        let slice = &self.input[self.offset..self.offset + length];
        self.offset += length;
        Ok(slice)
    }

    /// One byte.
    pub(crate) fn u8(&mut self, field: &str) -> Result<u8, DecodeError> {
        Ok(self.take(1, field)?[0])
    }

    /// A `u32` little endian.
    pub(crate) fn u32(&mut self, field: &str) -> Result<u32, DecodeError> {
        let bytes = self.take(4, field)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// A `u64` little endian.
    pub(crate) fn u64(&mut self, field: &str) -> Result<u64, DecodeError> {
        let bytes = self.take(8, field)?;
        let mut array = [0u8; 8];
        array.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(array))
    }

    /// A flag byte that must be 0 or 1.
    pub(crate) fn bool(&mut self, field: &str) -> Result<bool, DecodeError> {
        let start = self.offset;
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(self.error_at(
                start,
                format!("{field} flag is {other}; only 0 and 1 are valid"),
            )),
        }
    }

    /// A length-prefixed byte string, its length checked against the bytes left.
    pub(crate) fn bytes(&mut self, field: &str) -> Result<&'a [u8], DecodeError> {
        let start = self.offset;
        let length = self.u32(field)? as usize;
        if length > self.remaining() {
            return Err(self.error_at(
                start,
                format!(
                    "{field} length {length} exceeds the {} bytes left",
                    self.remaining()
                ),
            ));
        }
        self.take(length, field)
    }

    /// A length-prefixed byte string copied into a [`Bytes`].
    pub(crate) fn owned(&mut self, field: &str) -> Result<Bytes, DecodeError> {
        Ok(Bytes::copy_from_slice(self.bytes(field)?))
    }

    /// An option written by [`put_option`].
    pub(crate) fn option(&mut self, field: &str) -> Result<Option<Bytes>, DecodeError> {
        if self.bool(field)? {
            Ok(Some(self.owned(field)?))
        } else {
            Ok(None)
        }
    }

    /// A `u32` element count, refused when even the smallest elements (`element_bytes_min`
    /// each) could not fit in the bytes left: the count then sizes an allocation safely.
    pub(crate) fn count(
        &mut self,
        field: &str,
        element_bytes_min: usize,
    ) -> Result<usize, DecodeError> {
        let start = self.offset;
        let count = self.u32(field)? as usize;
        let fits = self.remaining() / element_bytes_min.max(1);
        if count > fits {
            return Err(self.error_at(
                start,
                format!(
                    "{field} count {count} cannot fit in the {} bytes left (each takes at least {element_bytes_min})",
                    self.remaining()
                ),
            ));
        }
        Ok(count)
    }

    /// A `u64` element count, checked like [`Reader::count`].
    pub(crate) fn count_u64(
        &mut self,
        field: &str,
        element_bytes_min: usize,
    ) -> Result<usize, DecodeError> {
        let start = self.offset;
        let count = self.u64(field)?;
        let fits = self.remaining() / element_bytes_min.max(1);
        match usize::try_from(count) {
            Ok(count) if count <= fits => Ok(count),
            _ => Err(self.error_at(
                start,
                format!(
                    "{field} count {count} cannot fit in the {} bytes left (each takes at least {element_bytes_min})",
                    self.remaining()
                ),
            )),
        }
    }

    /// Refuses unread bytes at the end.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() != 0 {
            return Err(self.error(format!(
                "{} trailing bytes after the end of the {}",
                self.remaining(),
                self.what
            )));
        }
        Ok(())
    }
}
