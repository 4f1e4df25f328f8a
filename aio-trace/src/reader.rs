//! Ring buffer bytes → typed records.
//!
//! Layer: decode. Imports only aio-trace-common; the session and the views import it.

use aio_trace_common::{CtxRecord, IocbRecord, RECORD_CTX, RECORD_IOCB, RECORD_SYSCALL};
use thiserror::Error;

/// One record of the kernel half.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    Iocb(IocbRecord),
    /// A synchronous vectored syscall, in the same layout as an iocb.
    Syscall(IocbRecord),
    Ctx(CtxRecord),
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("empty ring buffer record")]
    Empty,
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
    #[error("record of kind {kind} is {len} bytes, expected {expected}")]
    Truncated {
        kind: u8,
        len: usize,
        expected: usize,
    },
}

fn read<T: Copy>(bytes: &[u8], kind: u8) -> Result<T, DecodeError> {
    let expected = size_of::<T>();
    if bytes.len() < expected {
        return Err(DecodeError::Truncated {
            kind,
            len: bytes.len(),
            expected,
        });
    }
    // SAFETY: length checked; T is a #[repr(C)] plain-old-data record and the
    // ring buffer gives no alignment guarantee beyond 8, hence read_unaligned.
    Ok(unsafe { bytes.as_ptr().cast::<T>().read_unaligned() })
}

/// Decodes one ring buffer record by its leading kind byte.
pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
    match bytes.first() {
        None => Err(DecodeError::Empty),
        Some(&RECORD_IOCB) => read(bytes, RECORD_IOCB).map(Record::Iocb),
        Some(&RECORD_CTX) => read(bytes, RECORD_CTX).map(Record::Ctx),
        Some(&RECORD_SYSCALL) => read(bytes, RECORD_SYSCALL).map(Record::Syscall),
        Some(&other) => Err(DecodeError::UnknownKind(other)),
    }
}

/// The records of one ring buffer item: a single record, or, from
/// io_getevents, up to `REAP_BATCH` iocb records back to back. An empty item
/// is one error, not no records.
pub fn records(item: &[u8]) -> impl Iterator<Item = Result<Record, DecodeError>> + '_ {
    const IOCB: usize = size_of::<IocbRecord>();
    let batch =
        item.first() == Some(&RECORD_IOCB) && item.len() > IOCB && item.len().is_multiple_of(IOCB);
    let step = if batch { IOCB } else { item.len().max(1) };
    let empty = item.is_empty().then_some(Err(DecodeError::Empty));
    empty.into_iter().chain(item.chunks(step).map(decode))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of<T: Copy>(value: &T) -> Vec<u8> {
        // SAFETY: reading the bytes of a #[repr(C)] POD value.
        unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }
            .to_vec()
    }

    #[test]
    fn decodes_iocb_records() {
        let record = IocbRecord {
            kind: RECORD_IOCB,
            opcode: 7,
            pid: 42,
            segs: 8,
            bytes: 32768,
            res: 32768,
            ..Default::default()
        };
        assert_eq!(decode(&bytes_of(&record)), Ok(Record::Iocb(record)));
    }

    #[test]
    fn decodes_ctx_records_at_any_alignment() {
        let record = CtxRecord {
            kind: RECORD_CTX,
            event: 1,
            pid: 3,
            ctx: 0x7f00,
            nr_events: 128,
            ..Default::default()
        };
        let mut shifted = vec![0u8];
        shifted.extend(bytes_of(&record));
        assert_eq!(decode(&shifted[1..]), Ok(Record::Ctx(record)));
    }

    #[test]
    fn splits_a_batch_of_iocb_records_in_order() {
        let mut item = Vec::new();
        for n in 1..=3u64 {
            item.extend(bytes_of(&IocbRecord {
                kind: RECORD_IOCB,
                aio_data: n,
                ..IocbRecord::default()
            }));
        }
        let data: Vec<u64> = records(&item)
            .map(|r| match r {
                Ok(Record::Iocb(r)) => r.aio_data,
                other => panic!("not an iocb record: {other:?}"),
            })
            .collect();
        assert_eq!(data, [1, 2, 3]);
    }

    #[test]
    fn a_single_record_or_an_empty_item_is_one_result() {
        let ctx = bytes_of(&CtxRecord {
            kind: RECORD_CTX,
            ..CtxRecord::default()
        });
        assert_eq!(records(&ctx).count(), 1);
        let one: Vec<_> = records(&[]).collect();
        assert_eq!(one, [Err(DecodeError::Empty)]);
    }

    #[test]
    fn rejects_short_unknown_and_empty_records() {
        assert_eq!(decode(&[]), Err(DecodeError::Empty));
        assert_eq!(decode(&[9, 0, 0]), Err(DecodeError::UnknownKind(9)));
        assert_eq!(
            decode(&[RECORD_IOCB, 0, 0, 0]),
            Err(DecodeError::Truncated {
                kind: RECORD_IOCB,
                len: 4,
                expected: 176
            })
        );
    }
}
