//! Key choice: uniform, zipfian (scrambled) and latest, over a key space that may grow.
//!
//! Zipfian ranks are drawn with the rejection-free method of Gray et al. ("Quickly generating
//! billion-record synthetic databases", SIGMOD 1994), the method YCSB uses. It needs
//! zeta(n, theta) = sum over i in 1..=n of 1 / i^theta, which is computed once per chooser with
//! a bounded cost (exact for small n, Euler-Maclaurin beyond) and then updated incrementally as
//! inserts grow the key space.

use super::rng::SplitMix64;
use super::spec::KeyDistribution;

/// zeta(n) is summed term by term up to this many terms (one `powf` each, about 20 ns); the
/// rest of the sum comes from the Euler-Maclaurin formula, whose error at this cut-off is below
/// 1e-12 relative: the cost of a zeta is bounded whatever the key space.
const ZETA_EXACT_TERMS: u64 = 1024;

/// When the key space grew by at most this many keys since the last draw, the new terms are
/// added one by one (exact and cheap); beyond, zeta is recomputed with the bounded formula.
const ZETA_INCREMENT_TERMS_MAX: u64 = 1024;

/// Skew is kept below 1: the Gray et al. method divides by 1 - theta.
pub const THETA_MAX: f64 = 0.9999;

/// `i^-theta`.
fn term(i: f64, theta: f64) -> f64 {
    i.powf(-theta)
}

/// zeta(n, theta) = sum over i in 1..=n of i^-theta, at a cost of at most
/// [`ZETA_EXACT_TERMS`] terms plus a constant.
pub fn zeta(n: u64, theta: f64) -> f64 {
    if n <= ZETA_EXACT_TERMS {
        return (1..=n).map(|i| term(i as f64, theta)).sum();
    }
    // Exact head: 1 ..= m - 1.
    let m = ZETA_EXACT_TERMS;
    let head: f64 = (1..m).map(|i| term(i as f64, theta)).sum();
    // Tail m ..= n by Euler-Maclaurin: the integral, the mean of the end points, and the first
    // derivative correction; the next term is of order m^-(theta + 3) / 720, negligible here.
    let (mf, nf) = (m as f64, n as f64);
    let integral = if (1.0 - theta).abs() < 1e-12 {
        (nf / mf).ln()
    } else {
        (nf.powf(1.0 - theta) - mf.powf(1.0 - theta)) / (1.0 - theta)
    };
    let derivative = |x: f64| -theta * x.powf(-theta - 1.0);
    let tail = integral
        + (term(mf, theta) + term(nf, theta)) / 2.0
        + (derivative(nf) - derivative(mf)) / 12.0;
    head + tail
}

/// Zipfian ranks over 0 .. n (rank 0 the most popular), n able to grow.
#[derive(Clone, Debug)]
pub struct Zipfian {
    n: u64,
    theta: f64,
    alpha: f64,
    zeta_n: f64,
    zeta_2: f64,
    eta: f64,
}

impl Zipfian {
    /// Ranks over 0 .. n (n is taken as at least 1) with skew `theta`, clamped to
    /// 0 ..= [`THETA_MAX`] (a NaN counts as 0).
    pub fn new(n: u64, theta: f64) -> Zipfian {
        let theta = if theta.is_nan() {
            0.0
        } else {
            theta.clamp(0.0, THETA_MAX)
        };
        let n = n.max(1);
        let mut zipfian = Zipfian {
            n,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zeta_n: zeta(n, theta),
            zeta_2: zeta(2, theta),
            eta: 0.0,
        };
        zipfian.update_eta();
        zipfian
    }

    /// The number of ranks.
    pub fn n(&self) -> u64 {
        self.n
    }

    fn update_eta(&mut self) {
        // With n <= 2 every draw ends before eta is used (and the formula divides by zero).
        self.eta = if self.n > 2 {
            (1.0 - (2.0 / self.n as f64).powf(1.0 - self.theta)) / (1.0 - self.zeta_2 / self.zeta_n)
        } else {
            0.0
        };
    }

    /// Extends the ranks to 0 .. n (no-op if n is not larger), at a bounded cost.
    pub fn grow_to(&mut self, n: u64) {
        if n <= self.n {
            return;
        }
        if n - self.n <= ZETA_INCREMENT_TERMS_MAX {
            self.zeta_n += (self.n + 1..=n)
                .map(|i| term(i as f64, self.theta))
                .sum::<f64>();
        } else {
            self.zeta_n = zeta(n, self.theta);
        }
        self.n = n;
        self.update_eta();
    }

    /// A rank in 0 .. n, rank r drawn with probability close to (1 / (r + 1)^theta) / zeta(n).
    pub fn rank(&self, rng: &mut SplitMix64) -> u64 {
        let u = rng.next_f64();
        let uz = u * self.zeta_n;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1.min(self.n - 1);
        }
        let rank = (self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        rank.min(self.n - 1)
    }
}

/// A fixed permutation of 0 .. n that scatters neighbouring inputs over the whole range, so
/// that the hottest zipfian ranks land on keys spread over the key space (YCSB's "scrambled
/// zipfian" idea) while every key keeps exactly one rank: the distribution stays zipfian.
///
/// A bijection on k-bit numbers (2^k >= n) is applied repeatedly until the result falls below
/// n ("cycle walking"): as 2^k < 2n, that takes fewer than two rounds on average.
#[derive(Clone, Debug)]
pub struct Scramble {
    n: u64,
    bits: u32,
    mask: u64,
}

/// Round keys of the k-bit bijection (any values do; fixed so that every client, every run
/// and both systems get the same hot keys).
const SCRAMBLE_KEYS: [u64; 3] = [
    0x2545_f491_4f6c_dd1d,
    0x9e37_79b9_7f4a_7c15,
    0xd6e8_feb8_6659_fd93,
];

impl Scramble {
    pub fn new(n: u64) -> Scramble {
        let n = n.max(1);
        let bits = (64 - (n - 1).leading_zeros()).max(1);
        let mask = if bits == 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        Scramble { n, bits, mask }
    }

    /// One pass of the bijection on `bits`-bit numbers: xor with a key, multiply by an odd
    /// number and xor-shift right are each invertible modulo 2^bits.
    fn round_trip(&self, mut x: u64) -> u64 {
        let shift = self.bits / 2 + 1;
        for key in SCRAMBLE_KEYS {
            x = (x ^ key) & self.mask;
            x = x.wrapping_mul(key | 1) & self.mask;
            x ^= x >> shift;
        }
        x
    }

    /// The image of `x` (taken modulo n) in 0 .. n.
    pub fn apply(&self, x: u64) -> u64 {
        let start = x % self.n;
        let mut y = self.round_trip(start);
        // The cycle of the permutation through `start` comes back below n after at most 2^bits
        // steps (in practice one or two): the bound is a guard, never reached.
        for _ in 0..self.mask {
            if y < self.n {
                return y;
            }
            y = self.round_trip(y);
        }
        start
    }
}

/// Chooses key indices for one client.
#[derive(Clone, Debug)]
pub enum KeyChooser {
    /// Uniform over 0 .. current.
    Uniform,
    /// Zipfian over 0 .. current; ranks below the loaded key space are scrambled over it (the
    /// hot keys stay put as the key space grows), inserted keys keep their own index (they are
    /// the coldest ranks).
    Zipfian { ranks: Zipfian, scramble: Scramble },
    /// Zipfian over recency: rank r is key current - 1 - r (the newest is the hottest).
    Latest { ranks: Zipfian },
}

impl KeyChooser {
    /// A chooser for `distribution` over `loaded` keys (indices 0 .. loaded).
    pub fn new(distribution: KeyDistribution, loaded: u64) -> KeyChooser {
        match distribution {
            KeyDistribution::Uniform => KeyChooser::Uniform,
            KeyDistribution::Zipfian { theta } => KeyChooser::Zipfian {
                ranks: Zipfian::new(loaded, theta),
                scramble: Scramble::new(loaded),
            },
            KeyDistribution::Latest { theta } => KeyChooser::Latest {
                ranks: Zipfian::new(loaded, theta),
            },
        }
    }

    /// A key index in 0 .. current (`current` is the key space now: loaded plus inserted; it
    /// is taken as at least 1).
    pub fn next_index(&mut self, rng: &mut SplitMix64, current: u64) -> u64 {
        let current = current.max(1);
        match self {
            KeyChooser::Uniform => rng.below(current),
            KeyChooser::Zipfian { ranks, scramble } => {
                ranks.grow_to(current);
                let rank = ranks.rank(rng);
                if rank < scramble.n {
                    scramble.apply(rank)
                } else {
                    rank
                }
            }
            KeyChooser::Latest { ranks } => {
                ranks.grow_to(current);
                // grow_to only grows: a smaller `current` than before (a caller's quirk)
                // must still give an index below it.
                let rank = ranks.rank(rng).min(current - 1);
                current - 1 - rank
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn exact_zeta(n: u64, theta: f64) -> f64 {
        (1..=n).map(|i| (i as f64).powf(-theta)).sum()
    }

    #[test]
    fn zeta_formula_matches_the_exact_sum() {
        for theta in [0.0, 0.5, 0.8, 0.99] {
            for n in [1, 2, 10, 1024, 1025, 5000, 200_000] {
                let exact = exact_zeta(n, theta);
                let fast = zeta(n, theta);
                assert!(
                    ((fast - exact) / exact).abs() < 1e-9,
                    "theta {theta} n {n}: {fast} vs {exact}"
                );
            }
        }
    }

    #[test]
    fn growing_matches_a_fresh_zipfian() {
        let mut grown = Zipfian::new(1000, 0.99);
        grown.grow_to(1500); // incremental
        grown.grow_to(100_000); // recomputed
        grown.grow_to(100_010); // incremental again
        let fresh = Zipfian::new(100_010, 0.99);
        assert_eq!(grown.n(), 100_010);
        assert!(((grown.zeta_n - fresh.zeta_n) / fresh.zeta_n).abs() < 1e-9);
        assert!(((grown.eta - fresh.eta) / fresh.eta).abs() < 1e-9);
    }

    #[test]
    fn zipfian_is_skewed_and_in_range() {
        let n = 10_000;
        let mut chooser = KeyChooser::new(KeyDistribution::Zipfian { theta: 0.99 }, n);
        let mut rng = SplitMix64::new(42);
        let draws = 100_000;
        let mut counts = vec![0u64; n as usize];
        for _ in 0..draws {
            let index = chooser.next_index(&mut rng, n);
            assert!(index < n, "index {index} out of 0..{n}");
            counts[index as usize] += 1;
        }
        let hottest = *counts.iter().max().unwrap();
        // Uniform would give each key 0.01% of the draws; rank 0 of a theta 0.99 zipfian over
        // 10,000 keys gets 1 / zeta(10000, 0.99), about 10%.
        assert!(
            hottest as f64 > 0.05 * draws as f64,
            "hottest key got {hottest} of {draws}"
        );
        // The hottest keys are scattered, not the first indices.
        let mut by_count: Vec<(u64, usize)> =
            counts.iter().enumerate().map(|(i, c)| (*c, i)).collect();
        by_count.sort_unstable_by(|a, b| b.cmp(a));
        let top_ten: Vec<usize> = by_count[..10].iter().map(|(_, i)| *i).collect();
        assert!(
            top_ten.iter().any(|&i| i >= (n / 2) as usize),
            "the ten hottest keys {top_ten:?} are all in the first half"
        );
    }

    #[test]
    fn zipfian_grows_with_inserts() {
        let loaded = 100;
        let mut chooser = KeyChooser::new(KeyDistribution::Zipfian { theta: 0.99 }, loaded);
        let mut rng = SplitMix64::new(3);
        let mut beyond_loaded = 0;
        for _ in 0..100_000 {
            let index = chooser.next_index(&mut rng, 200);
            assert!(index < 200);
            if index >= loaded {
                beyond_loaded += 1;
            }
        }
        assert!(beyond_loaded > 0, "inserted keys are never chosen");
    }

    #[test]
    fn uniform_covers_the_range() {
        let n = 1000;
        let mut chooser = KeyChooser::new(KeyDistribution::Uniform, n);
        let mut rng = SplitMix64::new(9);
        let mut seen = vec![0u32; n as usize];
        for _ in 0..50_000 {
            let index = chooser.next_index(&mut rng, n);
            seen[index as usize] += 1;
        }
        // 50 draws per key on average: every key is drawn, and none is hot.
        assert!(seen.iter().all(|&count| count > 0), "a key was never drawn");
        assert!(
            seen.iter().all(|&count| count < 150),
            "a uniform key is hot"
        );
    }

    #[test]
    fn latest_favours_the_newest_keys() {
        let mut chooser = KeyChooser::new(KeyDistribution::Latest { theta: 0.99 }, 10_000);
        let mut rng = SplitMix64::new(5);
        let current = 10_500;
        let draws = 50_000;
        let mut newest = 0;
        for _ in 0..draws {
            let index = chooser.next_index(&mut rng, current);
            assert!(index < current);
            if index == current - 1 {
                newest += 1;
            }
        }
        assert!(
            newest > draws / 20,
            "the newest key got {newest} of {draws}"
        );
    }

    #[test]
    fn scramble_is_a_permutation() {
        for n in [1u64, 2, 3, 1000, 1024, 1025] {
            let scramble = Scramble::new(n);
            let images: HashSet<u64> = (0..n).map(|x| scramble.apply(x)).collect();
            assert_eq!(images.len() as u64, n, "n {n}");
            assert!(images.iter().all(|&y| y < n));
        }
    }

    #[test]
    fn theta_out_of_range_is_clamped_not_a_panic() {
        let mut rng = SplitMix64::new(1);
        for theta in [-1.0, 1.0, 5.0, f64::NAN] {
            let zipfian = Zipfian::new(100, theta);
            assert!(zipfian.rank(&mut rng) < 100);
        }
    }
}
