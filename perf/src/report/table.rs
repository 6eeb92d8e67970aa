//! The summary tables on stdout: one block per point, tern and etcd one above the other, with
//! a tern/etcd ratio row; fixed-width columns that read the same in a terminal and in a README
//! code block.

use crate::launch::ElectionTiming;
use crate::system::System;

use super::record::{ElectionTrial, RunRecord};

/// Bytes per MiB.
const MIB: f64 = 1024.0 * 1024.0;

/// Columns are separated by this many spaces.
const COLUMN_GAP: usize = 2;

/// The median (the mean of the middle two for an even count); `None` when empty.
fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    Some(if sorted.len() % 2 == 0 {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    })
}

/// The nearest-rank percentile (0-100) of `values`; `None` when empty.
fn percentile(values: &[f64], percent: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = ((percent / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Milliseconds with about three significant digits.
fn format_ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 10.0 {
        format!("{ms:.1}")
    } else if ms >= 1.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.3}")
    }
}

fn format_rate(ops_per_s: f64) -> String {
    if ops_per_s >= 100.0 {
        format!("{ops_per_s:.0}")
    } else {
        format!("{ops_per_s:.1}")
    }
}

/// tern / etcd as "0.42x"; "-" when it means nothing (no etcd figure, or zero).
fn format_ratio(tern: Option<f64>, etcd: Option<f64>) -> String {
    match (tern, etcd) {
        (Some(tern), Some(etcd)) if etcd > 0.0 && (tern / etcd).is_finite() => {
            format!("{:.2}x", tern / etcd)
        }
        _ => "-".to_string(),
    }
}

fn or_dash(value: Option<f64>, format: fn(f64) -> String) -> String {
    value.map_or_else(|| "-".to_string(), format)
}

/// A fixed-width text table: left-aligned text columns, right-aligned number columns.
struct TextTable {
    headers: Vec<&'static str>,
    /// Per column: right-aligned (numbers)?
    right_aligned: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl TextTable {
    fn new(columns: &[(&'static str, bool)]) -> TextTable {
        TextTable {
            headers: columns.iter().map(|(header, _)| *header).collect(),
            right_aligned: columns.iter().map(|(_, right)| *right).collect(),
            rows: Vec::new(),
        }
    }

    fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|header| header.len()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: Vec<&str>| -> String {
            let mut text = String::new();
            for (index, cell) in cells.iter().enumerate() {
                let width = widths[index];
                let padded = if self.right_aligned[index] {
                    format!("{cell:>width$}")
                } else {
                    format!("{cell:<width$}")
                };
                if index > 0 {
                    text.push_str(&" ".repeat(COLUMN_GAP));
                }
                text.push_str(&padded);
            }
            text.trim_end().to_string() + "\n"
        };
        let mut text = line(self.headers.to_vec());
        let rule: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
        text.push_str(&line(rule.iter().map(String::as_str).collect()));
        for row in &self.rows {
            text.push_str(&line(row.iter().map(String::as_str).collect()));
        }
        text
    }
}

/// The figures of one system at one point, medians over its repeats.
struct PointFigures {
    runs: usize,
    ops_per_s: Option<f64>,
    ops_min: Option<f64>,
    ops_max: Option<f64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    p999_ms: Option<f64>,
    cpu_ms_per_op: Option<f64>,
    /// The largest server's peak RSS.
    rss_mib: Option<f64>,
    errors: u64,
}

impl PointFigures {
    fn of(runs: &[&RunRecord]) -> PointFigures {
        let each = |figure: fn(&RunRecord) -> f64| -> Vec<f64> {
            runs.iter().map(|record| figure(record)).collect()
        };
        let ops = each(|record| record.ops_per_s);
        let rss: Vec<f64> = runs
            .iter()
            .filter_map(|record| record.peak_rss_bytes.iter().max())
            .map(|bytes| *bytes as f64 / MIB)
            .collect();
        PointFigures {
            runs: runs.len(),
            ops_per_s: median(&ops),
            ops_min: ops.iter().copied().reduce(f64::min),
            ops_max: ops.iter().copied().reduce(f64::max),
            p50_ms: median(&each(|record| record.latency.p50_ms)),
            p99_ms: median(&each(|record| record.latency.p99_ms)),
            p999_ms: median(&each(|record| record.latency.p999_ms)),
            cpu_ms_per_op: median(&each(|record| record.cpu_ms_per_op)),
            rss_mib: median(&rss),
            errors: runs.iter().map(|record| record.errors).sum(),
        }
    }
}

/// The systems present in `systems`, tern first.
fn systems_present(systems: impl Iterator<Item = System>) -> Vec<System> {
    let mut present: Vec<System> = systems.collect();
    present.sort();
    present.dedup();
    present
}

/// The summary of measured runs: one block per (label, nodes) in the order the points first
/// appear, a row per system with medians over repeats, and (when both systems ran) a
/// tern/etcd row.
pub fn summary_table(records: &[RunRecord]) -> String {
    if records.is_empty() {
        return "no runs to show\n".to_string();
    }
    let mut points: Vec<(&str, usize)> = Vec::new();
    for record in records {
        let point = (record.label.as_str(), record.nodes);
        if !points.contains(&point) {
            points.push(point);
        }
    }
    let with_ratios = systems_present(records.iter().map(|record| record.system)).len() > 1;

    let mut table = TextTable::new(&[
        ("point", false),
        ("nodes", true),
        ("system", false),
        ("ops/s", true),
        ("ops/s min-max", true),
        ("p50 ms", true),
        ("p99 ms", true),
        ("p99.9 ms", true),
        ("CPU ms/op", true),
        ("RSS MiB", true),
        ("runs", true),
        ("errors", true),
    ]);
    for (label, nodes) in points {
        let mut figures_by_system = Vec::new();
        for system in [System::Tern, System::Etcd] {
            let runs: Vec<&RunRecord> = records
                .iter()
                .filter(|record| {
                    record.system == system && record.label == label && record.nodes == nodes
                })
                .collect();
            if runs.is_empty() {
                continue;
            }
            let figures = PointFigures::of(&runs);
            let first_row = figures_by_system.is_empty();
            table.push(vec![
                if first_row {
                    label.to_string()
                } else {
                    String::new()
                },
                if first_row {
                    nodes.to_string()
                } else {
                    String::new()
                },
                system.name().to_string(),
                or_dash(figures.ops_per_s, format_rate),
                match (figures.ops_min, figures.ops_max) {
                    (Some(min), Some(max)) => format!("{}-{}", format_rate(min), format_rate(max)),
                    _ => "-".to_string(),
                },
                or_dash(figures.p50_ms, format_ms),
                or_dash(figures.p99_ms, format_ms),
                or_dash(figures.p999_ms, format_ms),
                or_dash(figures.cpu_ms_per_op, |ms| format!("{ms:.3}")),
                or_dash(figures.rss_mib, |mib| format!("{mib:.1}")),
                figures.runs.to_string(),
                figures.errors.to_string(),
            ]);
            figures_by_system.push((system, figures));
        }
        if let [(System::Tern, tern), (System::Etcd, etcd)] = figures_by_system.as_slice() {
            table.push(vec![
                String::new(),
                String::new(),
                "tern/etcd".to_string(),
                format_ratio(tern.ops_per_s, etcd.ops_per_s),
                String::new(),
                format_ratio(tern.p50_ms, etcd.p50_ms),
                format_ratio(tern.p99_ms, etcd.p99_ms),
                format_ratio(tern.p999_ms, etcd.p999_ms),
                format_ratio(tern.cpu_ms_per_op, etcd.cpu_ms_per_op),
                format_ratio(tern.rss_mib, etcd.rss_mib),
                String::new(),
                String::new(),
            ]);
        }
    }
    let mut text = String::from(
        "Medians over repeats. ops/s min-max: the spread over repeats. RSS: the largest server's \
         peak.\n",
    );
    if with_ratios {
        text.push_str(
            "tern/etcd rows: ops/s above 1 means tern is faster; latency, CPU and RSS below 1 \
             mean tern is better.\n",
        );
    }
    text.push('\n');
    text.push_str(&table.render());
    text
}

/// The election experiment: per system, cluster size and timeout range, the median, p90 and
/// maximum of the time to a new leader and to the first committed write, the mean number of
/// terms used, and the trials that failed.
pub fn election_table(trials: &[ElectionTrial]) -> String {
    if trials.is_empty() {
        return "no election trials to show\n".to_string();
    }
    let mut groups: Vec<(ElectionTiming, usize)> = Vec::new();
    for trial in trials {
        let group = (trial.timing, trial.nodes);
        if !groups.contains(&group) {
            groups.push(group);
        }
    }
    let mut table = TextTable::new(&[
        ("election timeout", false),
        ("nodes", true),
        ("system", false),
        ("trials", true),
        ("leader p50", true),
        ("leader p90", true),
        ("leader max", true),
        ("write p50", true),
        ("write p90", true),
        ("write max", true),
        ("terms", true),
        ("failed", true),
    ]);
    for (timing, nodes) in groups {
        let mut first_row = true;
        for system in [System::Tern, System::Etcd] {
            let group: Vec<&ElectionTrial> = trials
                .iter()
                .filter(|trial| {
                    trial.system == system && trial.timing == timing && trial.nodes == nodes
                })
                .collect();
            if group.is_empty() {
                continue;
            }
            let leader: Vec<f64> = group
                .iter()
                .filter_map(|trial| trial.new_leader_ms)
                .collect();
            let write: Vec<f64> = group
                .iter()
                .filter_map(|trial| trial.first_write_ms)
                .collect();
            let terms: Vec<u64> = group.iter().filter_map(|trial| trial.terms_used).collect();
            let failed = group
                .iter()
                .filter(|trial| trial.error.is_some() || trial.first_write_ms.is_none())
                .count();
            let mean_terms =
                (!terms.is_empty()).then(|| terms.iter().sum::<u64>() as f64 / terms.len() as f64);
            table.push(vec![
                if first_row {
                    timing.label()
                } else {
                    String::new()
                },
                if first_row {
                    nodes.to_string()
                } else {
                    String::new()
                },
                system.name().to_string(),
                group.len().to_string(),
                or_dash(median(&leader), format_ms),
                or_dash(percentile(&leader, 90.0), format_ms),
                or_dash(percentile(&leader, 100.0), format_ms),
                or_dash(median(&write), format_ms),
                or_dash(percentile(&write, 90.0), format_ms),
                or_dash(percentile(&write, 100.0), format_ms),
                or_dash(mean_terms, |terms| format!("{terms:.2}")),
                failed.to_string(),
            ]);
            first_row = false;
        }
    }
    let mut text = String::from(concat!(
        "Milliseconds from the kill -9 of the leader to a member naming a new leader (leader)\n",
        "and to the first committed write (write). terms: mean terms used (above 1: split ",
        "votes).\n\n",
    ));
    text.push_str(&table.render());
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::record::tests::record;

    /// The first table row (below the header's rule) whose first cell is `first_cells`.
    fn row_of<'a>(table: &'a str, first_cells: &str) -> &'a str {
        table
            .lines()
            .skip_while(|line| !line.starts_with("---"))
            .find(|line| line.trim_start().starts_with(first_cells))
            .unwrap_or_else(|| panic!("no row starting {first_cells:?} in\n{table}"))
    }

    fn has_ratio_cells(table: &str) -> bool {
        table.split_whitespace().any(|cell| {
            cell.strip_suffix('x')
                .is_some_and(|number| number.parse::<f64>().is_ok())
        })
    }

    #[test]
    fn both_systems_side_by_side_with_hand_computed_ratios() {
        let records = vec![
            record(System::Tern, "puts c=16", 3, 16, 0, 2000.0, 2.0),
            record(System::Tern, "puts c=16", 3, 16, 1, 4000.0, 2.0),
            record(System::Tern, "puts c=16", 3, 16, 2, 3000.0, 2.0),
            record(System::Etcd, "puts c=16", 3, 16, 0, 1000.0, 8.0),
            record(System::Etcd, "puts c=16", 3, 16, 1, 1500.0, 8.0),
        ];
        let table = summary_table(&records);
        // tern: median of 2000, 3000, 4000 = 3000; etcd: median of 1000, 1500 = 1250.
        let tern = row_of(&table, "puts c=16");
        assert!(tern.contains("tern") && tern.contains("3000") && tern.contains("2000-4000"));
        let etcd = row_of(&table, "etcd");
        assert!(
            etcd.contains("1250") && etcd.contains("1000-1500"),
            "{table}"
        );
        assert!(has_ratio_cells(&table));
        let ratio = row_of(&table, "tern/etcd");
        // ops/s 3000 / 1250 = 2.40; p99 2 / 8 = 0.25; p50 0.4 / 1.6 = 0.25.
        assert!(ratio.contains("2.40x"), "{table}");
        assert!(ratio.contains("0.25x"), "{table}");
        assert!(table.contains("below 1 mean tern is better"));
        let header = table
            .lines()
            .find(|line| line.starts_with("point"))
            .unwrap();
        assert!(header.contains("p99.9 ms") && header.contains("CPU ms/op"));
        // Fixed width: every row of the table is as wide as its rule at most.
        let rule_width = table
            .lines()
            .find(|line| line.starts_with("---"))
            .unwrap()
            .len();
        assert!(table
            .lines()
            .skip_while(|line| !line.starts_with("point"))
            .all(|line| line.len() <= rule_width));
    }

    #[test]
    fn one_system_only_has_no_ratios() {
        let records = vec![
            record(System::Etcd, "gets c=1", 3, 1, 0, 500.0, 1.0),
            record(System::Etcd, "gets c=64", 3, 64, 0, 9000.0, 4.0),
        ];
        let table = summary_table(&records);
        assert!(!table.contains("tern/etcd"), "{table}");
        assert!(!has_ratio_cells(&table), "{table}");
        // Points keep their order of appearance.
        let first = table.find("gets c=1 ").unwrap();
        let second = table.find("gets c=64").unwrap();
        assert!(first < second);
        assert_eq!(summary_table(&[]), "no runs to show\n");
    }

    fn trial(system: System, index: usize, write_ms: Option<f64>, terms: u64) -> ElectionTrial {
        ElectionTrial {
            system,
            nodes: 3,
            timing: ElectionTiming::DEFAULT,
            trial: index,
            killed_index: 0,
            new_leader_ms: write_ms.map(|ms| ms - 10.0),
            first_write_ms: write_ms,
            terms_used: Some(terms),
            error: write_ms
                .is_none()
                .then(|| "no leader within 10 s".to_string()),
        }
    }

    #[test]
    fn election_table_medians_and_failures() {
        let trials = vec![
            trial(System::Tern, 0, Some(300.0), 1),
            trial(System::Tern, 1, Some(200.0), 1),
            trial(System::Tern, 2, Some(400.0), 2),
            trial(System::Etcd, 0, Some(1000.0), 1),
            trial(System::Etcd, 1, None, 1),
        ];
        let table = election_table(&trials);
        let tern = row_of(&table, "150-300 ms");
        // Median write 300, p90 and max 400, leader median 290, mean terms 4/3.
        assert!(tern.contains(" 300 ") && tern.contains(" 400 ") && tern.contains(" 290 "));
        assert!(tern.contains("1.33"), "{table}");
        let etcd = row_of(&table, "etcd");
        assert!(etcd.trim_end().ends_with(" 1"), "one failure: {table}");
        assert_eq!(election_table(&[]), "no election trials to show\n");
    }

    #[test]
    fn median_and_percentile() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        let values: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&values, 90.0), Some(9.0));
        assert_eq!(percentile(&values, 100.0), Some(10.0));
        assert_eq!(percentile(&values, 0.0), Some(1.0));
    }
}
