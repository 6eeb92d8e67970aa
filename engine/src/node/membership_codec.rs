//! A membership's bytes on disk (a WAL membership entry's payload, a snapshot file's header):
//! the three id lists and the context, each length-prefixed, little endian. Decoding never
//! panics and refuses a membership that breaks the core's shape rules.

use bytes::Bytes;

use crate::raft::Membership;

/// Most ids one membership list may hold on disk: a bound on what a damaged length can ask
/// for (a cluster has at most a few dozen members).
const MEMBERSHIP_IDS_MAX: usize = 4096;
/// Most context bytes (member addresses) a membership may carry.
pub(crate) const MEMBERSHIP_CONTEXT_BYTES_MAX: usize = 1 << 20;

/// Appends `membership`'s encoding to `out`.
pub(crate) fn encode_membership(membership: &Membership, out: &mut Vec<u8>) {
    for list in [
        &membership.voters,
        &membership.voters_outgoing,
        &membership.learners,
    ] {
        out.extend_from_slice(&(list.len() as u32).to_le_bytes());
        for id in list {
            out.extend_from_slice(&id.to_le_bytes());
        }
    }
    out.extend_from_slice(&(membership.context.len() as u32).to_le_bytes());
    out.extend_from_slice(&membership.context);
}

/// Decodes a membership from the front of `bytes`; returns it and the bytes it used.
pub(crate) fn decode_membership(bytes: &[u8]) -> Result<(Membership, usize), String> {
    let mut at = 0usize;
    let mut lists: [Vec<u64>; 3] = Default::default();
    for (name, list) in ["voters", "voters_outgoing", "learners"]
        .iter()
        .zip(lists.iter_mut())
    {
        let count = read_u32(bytes, &mut at)? as usize;
        if count > MEMBERSHIP_IDS_MAX {
            return Err(format!(
                "membership {name} claims {count} ids (at most {MEMBERSHIP_IDS_MAX})"
            ));
        }
        for _ in 0..count {
            list.push(read_u64(bytes, &mut at)?);
        }
    }
    let context_bytes = read_u32(bytes, &mut at)? as usize;
    if context_bytes > MEMBERSHIP_CONTEXT_BYTES_MAX {
        return Err(format!(
            "membership context claims {context_bytes} bytes (at most {MEMBERSHIP_CONTEXT_BYTES_MAX})"
        ));
    }
    let context = bytes
        .get(at..at + context_bytes)
        .ok_or_else(|| format!("membership context truncated at byte {at}"))?;
    at += context_bytes;
    let [voters, voters_outgoing, learners] = lists;
    let membership = Membership {
        voters,
        voters_outgoing,
        learners,
        context: Bytes::copy_from_slice(context),
    };
    membership.validate()?;
    Ok((membership, at))
}

fn read_u32(bytes: &[u8], at: &mut usize) -> Result<u32, String> {
    let raw = bytes
        .get(*at..*at + 4)
        .ok_or_else(|| format!("membership truncated at byte {at}"))?;
    *at += 4;
    Ok(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
}

fn read_u64(bytes: &[u8], at: &mut usize) -> Result<u64, String> {
    let raw = bytes
        .get(*at..*at + 8)
        .ok_or_else(|| format!("membership truncated at byte {at}"))?;
    *at += 8;
    let mut word = [0u8; 8];
    word.copy_from_slice(raw);
    Ok(u64::from_le_bytes(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Membership {
        Membership {
            voters: vec![1, 2, 4],
            voters_outgoing: vec![1, 2, 3],
            learners: vec![7],
            context: Bytes::from_static(b"addresses"),
        }
    }

    #[test]
    fn memberships_round_trip() {
        let mut out = vec![9];
        encode_membership(&sample(), &mut out);
        let (decoded, used) = decode_membership(&out[1..]).expect("decodes");
        assert_eq!(decoded, sample());
        assert_eq!(used, out.len() - 1);
    }

    #[test]
    fn every_truncation_and_bad_shape_is_an_error() {
        let mut out = Vec::new();
        encode_membership(&sample(), &mut out);
        for cut in 0..out.len() {
            assert!(decode_membership(&out[..cut]).is_err(), "cut at {cut}");
        }
        let unsorted = Membership {
            voters: vec![2, 1],
            ..Membership::default()
        };
        let mut out = Vec::new();
        encode_membership(&unsorted, &mut out);
        let error = decode_membership(&out).expect_err("unsorted voters");
        assert!(error.contains("sorted"), "{error}");
        let huge = [0xFF, 0xFF, 0xFF, 0x7F];
        assert!(decode_membership(&huge)
            .expect_err("huge")
            .contains("claims"));
    }
}
