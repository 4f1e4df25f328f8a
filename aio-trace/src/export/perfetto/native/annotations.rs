//! A record's fields as `TrackEvent.debug_annotations`, encoded straight
//! from the schema's serde derive (`model::IocbFields`, the one definition of
//! the fields), without building messages or a JSON value per record: each
//! field is a `DebugAnnotation` (name, and a bool, uint, int, double or
//! string value), null fields are left out.

use std::fmt;

use prost::encoding::{WireType, encoded_len_varint};
use serde::{Serialize, Serializer, ser};

use super::{put_key, put_varint};

/// `TrackEvent.debug_annotations`.
const DEBUG_ANNOTATIONS: u32 = 4;
/// `DebugAnnotation` fields.
const NAME: u32 = 10;
const BOOL_VALUE: u32 = 2;
const UINT_VALUE: u32 = 3;
const INT_VALUE: u32 = 4;
const DOUBLE_VALUE: u32 = 5;
const STRING_VALUE: u32 = 6;

/// Appends `value`'s fields (a flat struct) to `out` as debug annotations.
pub fn write(value: &impl Serialize, out: &mut Vec<u8>) -> Result<(), Error> {
    value.serialize(Fields { out })
}

#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

fn unsupported(what: &str) -> Error {
    Error(format!(
        "a record field that is {what} is no debug annotation"
    ))
}

/// One annotation: `name` and a value written by `value` (its key included).
fn annotation(out: &mut Vec<u8>, name: &str, value_len: usize, value: impl FnOnce(&mut Vec<u8>)) {
    let name_len = 1 + encoded_len_varint(name.len() as u64) + name.len();
    let len = name_len + value_len;
    put_key(DEBUG_ANNOTATIONS, WireType::LengthDelimited, out);
    put_varint(len as u64, out);
    put_key(NAME, WireType::LengthDelimited, out);
    put_varint(name.len() as u64, out);
    out.extend_from_slice(name.as_bytes());
    value(out);
}

/// The struct: each field through [`Value`].
struct Fields<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> ser::SerializeStruct for Fields<'a> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(Value {
            name: key,
            out: self.out,
        })
    }

    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

/// One field's value, written as its annotation.
struct Value<'a> {
    name: &'static str,
    out: &'a mut Vec<u8>,
}

impl Value<'_> {
    fn varint(self, field: u32, v: u64) -> Result<(), Error> {
        let len = 1 + encoded_len_varint(v);
        annotation(self.out, self.name, len, |out| {
            put_key(field, WireType::Varint, out);
            put_varint(v, out);
        });
        Ok(())
    }
}

macro_rules! unsupported {
    ($($method:ident($($arg:ty),*) -> $ret:ty;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$ret, Error> {
            Err(unsupported(stringify!($method)))
        })*
    };
}

impl Serializer for Fields<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = ser::Impossible<(), Error>;
    type SerializeTuple = ser::Impossible<(), Error>;
    type SerializeTupleStruct = ser::Impossible<(), Error>;
    type SerializeTupleVariant = ser::Impossible<(), Error>;
    type SerializeMap = ser::Impossible<(), Error>;
    type SerializeStruct = Self;
    type SerializeStructVariant = ser::Impossible<(), Error>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Error> {
        Ok(self)
    }

    unsupported! {
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_str(&str) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), Error> {
        Err(unsupported("an option"))
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(unsupported("a newtype"))
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(unsupported("a variant"))
    }
}

impl Serializer for Value<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = ser::Impossible<(), Error>;
    type SerializeTuple = ser::Impossible<(), Error>;
    type SerializeTupleStruct = ser::Impossible<(), Error>;
    type SerializeTupleVariant = ser::Impossible<(), Error>;
    type SerializeMap = ser::Impossible<(), Error>;
    type SerializeStruct = ser::Impossible<(), Error>;
    type SerializeStructVariant = ser::Impossible<(), Error>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.varint(BOOL_VALUE, u64::from(v))
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    /// Not negative: a uint, as serde_json would give it.
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        match u64::try_from(v) {
            Ok(u) => self.varint(UINT_VALUE, u),
            Err(_) => self.varint(INT_VALUE, v as u64),
        }
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.varint(UINT_VALUE, v)
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        annotation(self.out, self.name, 1 + 8, |out| {
            put_key(DOUBLE_VALUE, WireType::SixtyFourBit, out);
            out.extend_from_slice(&v.to_le_bytes());
        });
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        let len = 1 + encoded_len_varint(v.len() as u64) + v.len();
        annotation(self.out, self.name, len, |out| {
            put_key(STRING_VALUE, WireType::LengthDelimited, out);
            put_varint(v.len() as u64, out);
            out.extend_from_slice(v.as_bytes());
        });
        Ok(())
    }
    /// Null: left out.
    fn serialize_none(self) -> Result<(), Error> {
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Ok(())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }
    fn collect_str<T: ?Sized + fmt::Display>(self, v: &T) -> Result<(), Error> {
        // Short values ("254:0"): formatted on the stack's worth of heap once.
        self.serialize_str(&v.to_string())
    }

    unsupported! {
        serialize_bytes(&[u8]) -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(unsupported("a variant"))
    }
}
