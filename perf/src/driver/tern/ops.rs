//! One workload operation through tern's client, and how its failures are named.

use bytes::Bytes;
use tern_net::{KvClient, KvError};

use crate::workload::Op;

/// Why one operation failed: a kind for the error table and the message of this occurrence.
#[derive(Debug)]
pub struct OpFailure {
    pub kind: &'static str,
    pub message: String,
}

/// Error kind of a failed read or scan of a key that was loaded: loaded keys are never
/// deleted, so an absent value is a wrong answer, not a miss.
pub const KIND_NOT_FOUND: &str = "NotFound";

/// The kind of a client error: the name of its `KvError` variant.
pub fn error_kind(error: &KvError) -> &'static str {
    match error {
        KvError::Timeout { .. } => "Timeout",
        KvError::Refused(_) => "Refused",
        KvError::Security(_) => "Security",
        KvError::Config(_) => "Config",
        KvError::Closed => "Closed",
        KvError::Protocol(_) => "Protocol",
    }
}

impl From<KvError> for OpFailure {
    fn from(error: KvError) -> OpFailure {
        OpFailure {
            kind: error_kind(&error),
            message: error.to_string(),
        }
    }
}

/// Runs `op` to its end (a read-modify-write is a get then a put, one operation).
///
/// `loaded_end` is the name of the first key the load did not write: keys below it (names are
/// fixed width, so byte order is index order) must exist, and a read finding one absent is a
/// [`KIND_NOT_FOUND`] failure. Keys from it on may be inserts still in flight: absent is fine.
pub async fn perform(client: &KvClient, op: Op, loaded_end: &[u8]) -> Result<(), OpFailure> {
    match op {
        Op::Read { key } => {
            let found = client.get(Bytes::from(key.clone())).await?;
            expect_found(&key, found.is_some(), loaded_end)
        }
        Op::Update { key, value } | Op::Insert { key, value } => {
            Ok(client.put(Bytes::from(key), Bytes::from(value)).await?)
        }
        Op::Scan { start, count } => {
            // The server refuses a limit of 0; a scan always reads at least its start key.
            let limit = u32::try_from(count).unwrap_or(u32::MAX).max(1);
            let (pairs, _more) = client
                .range(Bytes::from(start.clone()), None, limit)
                .await?;
            expect_found(&start, !pairs.is_empty(), loaded_end)
        }
        Op::ReadModifyWrite { key, value } => {
            let key = Bytes::from(key);
            let found = client.get(key.clone()).await?;
            expect_found(&key, found.is_some(), loaded_end)?;
            Ok(client.put(key, Bytes::from(value)).await?)
        }
    }
}

fn expect_found(key: &[u8], found: bool, loaded_end: &[u8]) -> Result<(), OpFailure> {
    if found || key >= loaded_end {
        return Ok(());
    }
    Err(OpFailure {
        kind: KIND_NOT_FOUND,
        message: format!(
            "key {} was loaded but a read found it absent (was the load skipped, or the data \
             directory reused?)",
            String::from_utf8_lossy(key)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::key_name;

    #[test]
    fn only_loaded_keys_must_be_found() {
        let loaded_end = key_name(100);
        let missing = expect_found(&key_name(99), false, &loaded_end).unwrap_err();
        assert_eq!(missing.kind, KIND_NOT_FOUND);
        assert!(
            missing.message.contains("perf/000000000099"),
            "{}",
            missing.message
        );
        assert!(expect_found(&key_name(100), false, &loaded_end).is_ok());
        assert!(expect_found(&key_name(5), true, &loaded_end).is_ok());
    }

    #[test]
    fn error_kinds_are_variant_names() {
        assert_eq!(error_kind(&KvError::Closed), "Closed");
        let timeout = KvError::Timeout {
            elapsed_ms: 5,
            last_problem: "x".into(),
        };
        let failure = OpFailure::from(timeout);
        assert_eq!(failure.kind, "Timeout");
        assert!(failure.message.contains("5 ms"), "{}", failure.message);
    }
}
