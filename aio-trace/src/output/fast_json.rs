//! The JSONL hot path's encoder: a serde `Serializer` that appends a flat
//! record (a struct of numbers, strings and options) to a `Vec<u8>` as
//! serde_json's compact writer does, byte for byte. Output layer: it encodes
//! into memory and writes no file.
//!
//! It exists for speed, not for another format: serde_json escapes every key
//! byte by byte, and that scan costs a quarter of `record`'s CPU. Keys here are
//! the schema's field names, which need no escaping, so they are copied as
//! they are. Because it is driven by the record's own `Serialize` derive, the
//! fields and their order are the schema's by construction; a unit test holds
//! the bytes to serde_json's. No allocation per record: numbers go through
//! `itoa`, strings through serde_json's escaping into the same buffer.

use std::{fmt::Display, io::Write};

use serde::{
    Serialize,
    ser::{self, Impossible},
};

type Error = serde_json::Error;

/// Appends `value` to `out` as `serde_json::to_writer` would.
pub fn write<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), Error> {
    value.serialize(&mut Line(out))
}

struct Line<'a>(&'a mut Vec<u8>);

/// The fields of one struct being written; `first` until a field is.
pub struct Fields<'s, 'a> {
    line: &'s mut Line<'a>,
    first: bool,
}

/// What serde_json escapes in a string: control characters, quote, backslash.
#[inline(always)]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

fn unsupported(what: &str) -> Error {
    ser::Error::custom(format!("fast_json writes flat records, not {what}"))
}

/// Integers through itoa, as serde_json writes them.
macro_rules! integers {
    ($($method:ident: $ty:ty),*) => {$(
        #[inline(always)]
        fn $method(self, v: $ty) -> Result<(), Error> {
            self.0.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
            Ok(())
        }
    )*};
}

impl<'s, 'a> ser::Serializer for &'s mut Line<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Fields<'s, 'a>;
    type SerializeStructVariant = Impossible<(), Error>;

    integers!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128);

    #[inline(always)]
    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.0.extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        serde_json::to_writer(&mut *self.0, &v)
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        serde_json::to_writer(&mut *self.0, &v)
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    #[inline(always)]
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        if v.bytes().any(needs_escape) {
            return serde_json::to_writer(&mut *self.0, v);
        }
        self.0.push(b'"');
        self.0.extend_from_slice(v.as_bytes());
        self.0.push(b'"');
        Ok(())
    }
    /// Formats in place (the default would allocate a String): straight
    /// into the buffer, escaped afterwards only if it has to be.
    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<(), Error> {
        let start = self.0.len();
        self.0.push(b'"');
        write!(self.0, "{value}").map_err(Error::io)?;
        if self.0[start + 1..].iter().copied().any(needs_escape) {
            let raw = self.0.split_off(start + 1);
            self.0.truncate(start);
            // Display wrote valid UTF-8.
            return self.serialize_str(&String::from_utf8_lossy(&raw));
        }
        self.0.push(b'"');
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Error> {
        Err(unsupported("bytes"))
    }
    #[inline(always)]
    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }
    #[inline(always)]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    #[inline(always)]
    fn serialize_unit(self) -> Result<(), Error> {
        self.0.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }
    #[inline(always)]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(unsupported("enums with data"))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(unsupported("sequences"))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(unsupported("tuples"))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(unsupported("tuples"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(unsupported("enums with data"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(unsupported("maps"))
    }
    #[inline(always)]
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Fields<'s, 'a>, Error> {
        self.0.push(b'{');
        Ok(Fields {
            line: self,
            first: true,
        })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(unsupported("enums with data"))
    }
}

impl ser::SerializeStruct for Fields<'_, '_> {
    type Ok = ();
    type Error = Error;

    #[inline(always)]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        debug_assert!(
            !key.bytes().any(needs_escape),
            "a key that needs escaping: {key:?}"
        );
        let out = &mut *self.line.0;
        if !self.first {
            out.push(b',');
        }
        self.first = false;
        out.push(b'"');
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
        value.serialize(&mut *self.line)
    }
    fn end(self) -> Result<(), Error> {
        self.line.0.push(b'}');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Flat<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        n: i64,
        u: u8,
        none: Option<u32>,
        yes: bool,
        x: f64,
        shown: Shown,
        unit: (),
    }

    struct Shown(&'static str);

    impl Serialize for Shown {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(self.0)
        }
    }

    #[test]
    fn writes_what_serde_json_writes() {
        for (kind, shown) in [("iocb", "254:1"), ("a\"b\\c\n\u{1}é", "x\"\ty")] {
            let flat = Flat {
                kind,
                n: i64::MIN,
                u: 255,
                none: None,
                yes: true,
                x: 0.25,
                shown: Shown(shown),
                unit: (),
            };
            let mut out = b"before ".to_vec();
            write(&flat, &mut out).unwrap();
            let expected = [b"before ".to_vec(), serde_json::to_vec(&flat).unwrap()].concat();
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&expected)
            );
        }
    }

    #[test]
    fn refuses_what_is_not_flat() {
        assert!(write(&[1, 2], &mut Vec::new()).is_err());
    }
}
