//! What the demo reads back and judges, apart from the processes that wrote
//! it: InnoDB's error log, the recording's records, record's loss line,
//! sysbench's summary. Pure, so the unit tests feed it text.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use serde_json::Value;

use super::AioMode;

/// The interface InnoDB says it uses, from its start-up lines in the error log.
pub fn chosen_interface(error_log: &str) -> Option<AioMode> {
    error_log.lines().find_map(|line| {
        if line.contains("InnoDB: Using io_uring") {
            Some(AioMode::IoUring)
        } else if line.contains("InnoDB: Using Linux native AIO") {
            Some(AioMode::Libaio)
        } else {
            None
        }
    })
}

/// Records of a recording per (api, op).
#[derive(Debug, Default)]
pub struct Tally {
    pub counts: BTreeMap<(String, String), u64>,
}

impl Tally {
    pub fn from_jsonl(text: &str) -> Result<Self> {
        let mut tally = Self::default();
        for (n, line) in text.lines().enumerate() {
            let record: Value = serde_json::from_str(line)
                .with_context(|| format!("line {} is not JSON", n + 1))?;
            let kind = record["type"].as_str().unwrap_or("");
            if kind != "iocb" && kind != "syscall" {
                continue;
            }
            // A recording older than the `api` field holds AIO iocbs and
            // synchronous syscalls only (docs/record.md).
            let api = match record["api"].as_str() {
                Some(api) => api.to_owned(),
                None if kind == "syscall" => "sync".to_owned(),
                None => "aio".to_owned(),
            };
            let op = record["op"].as_str().unwrap_or("?").to_owned();
            *tally.counts.entry((api, op)).or_default() += 1;
        }
        Ok(tally)
    }

    pub fn of_api(&self, api: &str) -> u64 {
        self.counts
            .iter()
            .filter(|((a, _), _)| a == api)
            .map(|(_, n)| n)
            .sum()
    }

    /// One line per api: its total, then each op's count.
    pub fn lines(&self) -> Vec<String> {
        let mut apis: Vec<&str> = self.counts.keys().map(|(api, _)| api.as_str()).collect();
        apis.dedup();
        apis.iter()
            .map(|api| {
                let ops: Vec<String> = self
                    .counts
                    .iter()
                    .filter(|((a, _), _)| a == api)
                    .map(|((_, op), n)| format!("{op} {n}"))
                    .collect();
                format!("{api} {}: {}", self.of_api(api), ops.join(", "))
            })
            .collect()
    }
}

/// record's closing `lost: N (cause n, …)` line, and its N.
pub fn losses(stderr: &[String]) -> Option<(u64, &str)> {
    stderr.iter().find_map(|line| {
        let rest = line.strip_prefix("lost: ")?;
        let n = rest.split_whitespace().next()?.parse().ok()?;
        Some((n, line.as_str()))
    })
}

/// sysbench's `transactions: N (R per sec.)`.
pub fn transactions(sysbench: &str) -> Option<(u64, f64)> {
    sysbench.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if words.next()? != "transactions:" {
            return None;
        }
        let count = words.next()?.parse().ok()?;
        let rate = words.next()?.trim_start_matches('(').parse().ok()?;
        Some((count, rate))
    })
}

/// Passes when InnoDB did data file I/O and aio-trace recorded requests of
/// the interface InnoDB uses; the message says what was seen either way.
pub fn judge(mode: AioMode, innodb_ios: u64, tally: &Tally) -> Result<String, String> {
    let api = mode.api();
    let records = tally.of_api(api);
    if innodb_ios == 0 {
        return Err("InnoDB did no data file I/O during the run, so nothing was checked".into());
    }
    if records == 0 {
        return Err(format!(
            "InnoDB on {} did {innodb_ios} data file reads and writes, but aio-trace recorded no {api} requests of mariadbd",
            mode.name()
        ));
    }
    Ok(format!(
        "aio-trace recorded {records} {api} requests of mariadbd while InnoDB on {} did {innodb_ios} data file reads and writes",
        mode.name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_the_interface_from_the_error_log() {
        let uring = "2026-11-28 22:28:19 0 [Note] InnoDB: Using AVX512 instructions\n\
                     2026-11-28 22:28:19 0 [Note] InnoDB: Using io_uring\n";
        assert_eq!(chosen_interface(uring), Some(AioMode::IoUring));
        let fallback = "2026-11-28 22:28:31 0 [Warning] mariadbd: io_uring_queue_init() failed with EPERM\n\
                        create_uring failed: falling back to libaio\n\
                        2026-11-28 22:28:31 0 [Note] InnoDB: Using Linux native AIO\n";
        assert_eq!(chosen_interface(fallback), Some(AioMode::Libaio));
        assert_eq!(
            chosen_interface("[Note] InnoDB: Initializing buffer pool\n"),
            None
        );
    }

    #[test]
    fn counts_records_per_api_and_op() {
        let jsonl = r#"{"type":"header","version":1}
{"type":"iocb","ctx":140324434194432,"op":"PWRITE","api":"aio"}
{"type":"iocb","ctx":18446612686467051520,"op":"READV","api":"io_uring"}
{"type":"iocb","ctx":18446612686467051520,"op":"WRITEV","api":"io_uring"}
{"type":"iocb","ctx":18446612686467051520,"op":"WRITEV","api":"io_uring"}
{"type":"syscall","ctx":0,"op":"PREADV","api":"sync"}
{"type":"summary","pid":1}
{"type":"lost","ring_full":0}"#;
        let tally = Tally::from_jsonl(jsonl).unwrap();
        assert_eq!(
            (
                tally.of_api("aio"),
                tally.of_api("io_uring"),
                tally.of_api("sync")
            ),
            (1, 3, 1)
        );
        assert_eq!(
            tally.lines(),
            [
                "aio 1: PWRITE 1",
                "io_uring 3: READV 1, WRITEV 2",
                "sync 1: PREADV 1"
            ]
        );
    }

    #[test]
    fn without_an_api_field_records_are_aio_or_sync_by_type() {
        let jsonl = r#"{"type":"iocb","ctx":140324434194432,"op":"PREAD"}
{"type":"syscall","ctx":0,"op":"PREADV"}"#;
        let tally = Tally::from_jsonl(jsonl).unwrap();
        assert_eq!(tally.lines(), ["aio 1: PREAD 1", "sync 1: PREADV 1"]);
    }

    #[test]
    fn a_torn_line_is_an_error_naming_it() {
        let err = Tally::from_jsonl("{\"type\":\"iocb\"}\n{\"type\":").unwrap_err();
        assert_eq!(err.to_string(), "line 2 is not JSON");
    }

    #[test]
    fn reads_the_loss_line_and_the_transactions() {
        let stderr = [
            "aio-trace: recorded 5 records to x.jsonl".to_owned(),
            "lost: 0 (ring_full 0, inflight_full 0); in flight at start: 3".to_owned(),
        ];
        assert_eq!(losses(&stderr).map(|(n, _)| n), Some(0));
        assert_eq!(losses(&stderr[..1]), None);
        let sysbench = "SQL statistics:\n    transactions:                        1234   (123.35 per sec.)\n    queries:                             24680  (2467.00 per sec.)\n";
        assert_eq!(transactions(sysbench), Some((1234, 123.35)));
        assert_eq!(transactions("queries: 5 (1 per sec.)"), None);
    }

    #[test]
    fn fails_only_when_innodb_did_io_that_was_not_recorded() {
        let tally =
            Tally::from_jsonl(r#"{"type":"iocb","ctx":1,"op":"PWRITE","api":"aio"}"#).unwrap();
        assert!(judge(AioMode::Libaio, 10, &tally).is_ok());
        let miss = judge(AioMode::IoUring, 10, &tally).unwrap_err();
        assert_eq!(
            miss,
            "InnoDB on io_uring did 10 data file reads and writes, but aio-trace recorded no io_uring requests of mariadbd"
        );
        assert!(judge(AioMode::Libaio, 0, &tally).is_err());
    }
}
