//! A small seeded pseudo-random generator (SplitMix64). The core and the simulator use it so a
//! seed replays exactly, whatever version of any random-number crate is around.

/// SplitMix64: tiny, fast, and good enough for timeouts and fault schedules (not cryptography).
#[derive(Clone, Debug)]
pub struct SeededRng {
    state: u64,
}

impl SeededRng {
    /// A generator whose whole sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for stream `stream` (a member id) of `seed`. The streams' starting states
    /// are hashed apart: states a multiple of the increment apart would give one stream the
    /// other's sequence shifted by a step, so two members would draw the same election
    /// timeouts one after the other and could split every vote.
    pub fn for_stream(seed: u64, stream: u64) -> Self {
        let mut stream_hash = SeededRng::new(stream ^ 0x5851_F42D_4C95_7F2D);
        let mut seeded = SeededRng::new(seed ^ stream_hash.next_u64());
        Self {
            state: seeded.next_u64(),
        }
    }

    /// The next pseudo-random value.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `low..high` (`low` when the range is empty).
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        low + self.next_u64() % (high - low)
    }

    /// True with probability `numerator / denominator`.
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        denominator > 0 && self.next_u64() % denominator < numerator
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn streams_of_one_seed_are_not_shifted_copies_of_each_other() {
        use super::SeededRng;
        for seed in [0, 4981, u64::MAX] {
            // Also when the caller already mixed the stream into the seed the way the old
            // derivation did (`seed ^ stream * increment`): that cancelled it out, and every
            // member of a simulated cluster drew the same timeouts.
            let draws = |stream: u64| {
                let mixed = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let mut rng = SeededRng::for_stream(mixed, stream);
                (0..64).map(|_| rng.range(10, 16)).collect::<Vec<u64>>()
            };
            let (first, second) = (draws(1), draws(2));
            for shift in 0..4 {
                assert_ne!(
                    first[shift..40 + shift],
                    second[..40],
                    "seed {seed} shift {shift}"
                );
                assert_ne!(
                    second[shift..40 + shift],
                    first[..40],
                    "seed {seed} shift {shift}"
                );
            }
        }
    }

    use super::*;

    #[test]
    fn same_seed_same_sequence_and_ranges_hold() {
        let mut first = SeededRng::new(42);
        let mut second = SeededRng::new(42);
        let mut other = SeededRng::new(43);
        let a: Vec<u64> = (0..8).map(|_| first.next_u64()).collect();
        let b: Vec<u64> = (0..8).map(|_| second.next_u64()).collect();
        let c: Vec<u64> = (0..8).map(|_| other.next_u64()).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        for _ in 0..1000 {
            let value = first.range(10, 20);
            assert!((10..20).contains(&value));
        }
        assert_eq!(first.range(5, 5), 5);
    }
}
