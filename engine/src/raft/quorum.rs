//! Majority arithmetic for a single set of voters (joint consensus comes later).

/// How many voters make a majority of `voter_count`.
pub(crate) fn majority(voter_count: usize) -> usize {
    voter_count / 2 + 1
}

/// The largest value that at least `quorum` of `values` reach: sort descending, take the
/// quorum-th. Used for the commit index (match indexes) and for acknowledged read rounds.
pub(crate) fn quorum_value(values: &mut [u64], quorum: usize) -> u64 {
    values.sort_unstable_by(|a, b| b.cmp(a));
    quorum
        .checked_sub(1)
        .and_then(|position| values.get(position))
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_and_quorum_value() {
        assert_eq!(majority(1), 1);
        assert_eq!(majority(3), 2);
        assert_eq!(majority(4), 3);
        assert_eq!(quorum_value(&mut [5, 9, 7], 2), 7);
        assert_eq!(quorum_value(&mut [5, 9, 7, 1, 2], 3), 5);
        assert_eq!(quorum_value(&mut [], 1), 0);
    }
}
