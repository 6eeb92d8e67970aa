//! One workload operation as etcd requests.

use etcd_client::{Client, GetOptions};

use crate::workload::{Op, ReadConsistency};

/// The end of the scan range: keys are "perf/<12 digits>" (workload::key_name) and '0' is the
/// byte after '/', so "perf0" bounds every workload key and nothing else.
pub(super) const SCAN_RANGE_END: &[u8] = b"perf0";

/// How gets are served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reads {
    /// etcd's default: confirmed through the leader with a quorum (ReadIndex).
    Linearizable,
    /// Served by whichever member took the request, from its own state.
    Serializable,
}

impl Reads {
    /// An error for what etcd cannot do.
    pub fn of(consistency: ReadConsistency) -> Result<Reads, String> {
        match consistency {
            ReadConsistency::Linearizable => Ok(Reads::Linearizable),
            ReadConsistency::Serializable => Ok(Reads::Serializable),
            ReadConsistency::Lease => Err(
                "etcd has no lease reads (its v3 API offers linearizable and serializable reads \
                 only); run the etcd side with linearizable or serializable reads"
                    .to_string(),
            ),
        }
    }

    fn options(self) -> GetOptions {
        match self {
            Reads::Linearizable => GetOptions::new(),
            Reads::Serializable => GetOptions::new().with_serializable(),
        }
    }
}

/// Runs `op`: a read-modify-write is a get then a put, both inside this call (timed as one).
pub(super) async fn execute(
    client: &mut Client,
    op: Op,
    reads: Reads,
) -> Result<(), etcd_client::Error> {
    match op {
        Op::Read { key } => {
            client.get(key, Some(reads.options())).await?;
        }
        Op::Update { key, value } | Op::Insert { key, value } => {
            client.put(key, value, None).await?;
        }
        Op::Scan { start, count } => {
            // A count beyond i64 is "everything" anyway; 0 would mean no limit to etcd.
            let limit = i64::try_from(count.max(1)).unwrap_or(i64::MAX);
            let options = reads.options().with_range(SCAN_RANGE_END).with_limit(limit);
            client.get(start, Some(options)).await?;
        }
        Op::ReadModifyWrite { key, value } => {
            client.get(key.clone(), Some(reads.options())).await?;
            client.put(key, value, None).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::key_name;

    #[test]
    fn the_scan_range_covers_every_workload_key_and_only_those() {
        for index in [0, 1, 999_999_999_999] {
            let key = key_name(index);
            assert!(
                key.as_slice() < SCAN_RANGE_END,
                "{:?}",
                String::from_utf8_lossy(&key)
            );
            assert!(key.as_slice() >= b"perf/".as_slice());
        }
        assert!(b"perf0".as_slice() >= SCAN_RANGE_END);
        assert!(b"probe/x".as_slice() >= SCAN_RANGE_END);
    }

    #[test]
    fn lease_reads_are_refused_with_what_to_do() {
        let error = Reads::of(ReadConsistency::Lease).unwrap_err();
        assert!(error.contains("linearizable or serializable"), "{error}");
        assert_eq!(
            Reads::of(ReadConsistency::Serializable),
            Ok(Reads::Serializable)
        );
    }
}
