//! Latency summaries of an hdrhistogram (microseconds in, milliseconds out).

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Microseconds per millisecond.
const US_PER_MS: f64 = 1000.0;

/// CDF points per decade of "nines" (90%, 99%, 99.9% ...): 50 keeps the curve smooth on a
/// 1000-pixel plot while the whole CDF stays a few hundred points.
const CDF_POINTS_PER_DECADE: usize = 50;

/// The deepest tail the CDF goes to: 99.999% (five nines). Beyond, and beyond what the number
/// of samples can resolve, only the maximum follows.
const CDF_NINES_MAX: f64 = 5.0;

/// The figures of one latency distribution, in milliseconds.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LatencySummary {
    /// Operations measured.
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl LatencySummary {
    /// The summary of a histogram of microseconds (all zeros when it is empty).
    pub fn of(histogram: &Histogram<u64>) -> LatencySummary {
        if histogram.is_empty() {
            return LatencySummary {
                count: 0,
                mean_ms: 0.0,
                p50_ms: 0.0,
                p90_ms: 0.0,
                p99_ms: 0.0,
                p999_ms: 0.0,
                max_ms: 0.0,
            };
        }
        let at = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / US_PER_MS;
        LatencySummary {
            count: histogram.len(),
            mean_ms: histogram.mean() / US_PER_MS,
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: histogram.max() as f64 / US_PER_MS,
        }
    }
}

/// Points of the latency CDF: (percentile 0-100, latency in ms), percentiles ascending.
///
/// Spaced evenly in "nines" (-log10(1 - p)), so they are dense near the tail where latency
/// changes fastest; they stop where the samples run out (a percentile finer than one sample
/// says nothing) and end with the maximum at 100. Empty for an empty histogram.
pub fn cdf_points(histogram: &Histogram<u64>) -> Vec<(f64, f64)> {
    if histogram.is_empty() {
        return Vec::new();
    }
    let samples = histogram.len() as f64;
    let steps = (CDF_NINES_MAX as usize) * CDF_POINTS_PER_DECADE;
    let mut points = Vec::with_capacity(steps + 2);
    for step in 0..=steps {
        let nines = step as f64 / CDF_POINTS_PER_DECADE as f64;
        let beyond = 10f64.powf(-nines); // 1 - quantile
        if beyond * samples < 1.0 {
            break;
        }
        let quantile = 1.0 - beyond;
        let ms = histogram.value_at_quantile(quantile) as f64 / US_PER_MS;
        points.push((quantile * 100.0, ms));
    }
    points.push((100.0, histogram.max() as f64 / US_PER_MS));
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram_of(values_us: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut histogram = Histogram::new_with_bounds(1, 60_000_000, 3).unwrap();
        for value in values_us {
            histogram.record(value).unwrap();
        }
        histogram
    }

    #[test]
    fn summary_of_one_to_a_thousand_ms() {
        // 1 ms, 2 ms, ..., 1000 ms.
        let summary = LatencySummary::of(&histogram_of((1..=1000).map(|ms| ms * 1000)));
        assert_eq!(summary.count, 1000);
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.002;
        assert!(close(summary.mean_ms, 500.5), "{summary:?}");
        assert!(close(summary.p50_ms, 500.0), "{summary:?}");
        assert!(close(summary.p90_ms, 900.0), "{summary:?}");
        assert!(close(summary.p99_ms, 990.0), "{summary:?}");
        assert!(close(summary.p999_ms, 999.0), "{summary:?}");
        assert!(close(summary.max_ms, 1000.0), "{summary:?}");
    }

    #[test]
    fn empty_histogram_gives_zeros_and_no_points() {
        let empty = histogram_of([]);
        assert_eq!(LatencySummary::of(&empty).count, 0);
        assert_eq!(LatencySummary::of(&empty).p99_ms, 0.0);
        assert!(cdf_points(&empty).is_empty());
    }

    #[test]
    fn cdf_is_monotonic_dense_in_the_tail_and_ends_at_the_max() {
        let histogram = histogram_of((1..=100_000).map(|us| us * 10));
        let points = cdf_points(&histogram);
        assert!(
            points.len() > 100 && points.len() < 1000,
            "{} points",
            points.len()
        );
        for pair in points.windows(2) {
            assert!(pair[0].0 < pair[1].0, "percentiles not ascending: {pair:?}");
            assert!(pair[0].1 <= pair[1].1, "latency not ascending: {pair:?}");
        }
        let above_99 = points.iter().filter(|(p, _)| *p > 99.0).count();
        let below_50 = points.iter().filter(|(p, _)| *p < 50.0).count();
        assert!(
            above_99 > below_50,
            "{above_99} points above p99, {below_50} below p50"
        );
        let last = points.last().unwrap();
        assert_eq!(last.0, 100.0);
        assert!((last.1 - 1000.0).abs() < 1.0, "max {last:?}");
        // 100,000 samples resolve to 99.999% at most.
        assert!(points.iter().all(|(p, _)| *p == 100.0 || *p <= 99.9991));
    }
}
