//! The demo's closed-loop workload: concurrent tasks sharing one pipelining client, each doing
//! one operation at a time on its own keys, so that every key's possible values are known and
//! both the reads during the run and the check after the failover can be verified exactly.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use tern_net::{KvClient, KvError};

/// Keys the workload spreads over: `demo/0` .. `demo/9999`.
pub const KEY_SPACE: u32 = 10_000;
/// Write ids are written as this many hex digits at the start of each value.
pub const WRITE_ID_DIGITS: usize = 16;
/// Mismatching reads kept for the report (the count is always exact).
const MISMATCHES_KEPT_MAX: usize = 5;

/// The workload's shape.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub clients: usize,
    pub duration: Duration,
    pub value_bytes: usize,
    pub read_percent: u8,
}

/// What a key may hold: the last acknowledged write (`None`: absent), or any write whose
/// outcome is unknown (it failed with a timeout: applied at most once, maybe even later).
#[derive(Clone, Debug, Default)]
pub struct Possible {
    pub acknowledged: Option<u64>,
    pub unknown: Vec<u64>,
}

impl Possible {
    /// True when some write of this key was acknowledged or may have been applied.
    pub fn written(&self) -> bool {
        self.acknowledged.is_some() || !self.unknown.is_empty()
    }

    /// Whether a read may return `found` (a write id, `None`: absent).
    pub fn allows(&self, found: Option<u64>) -> bool {
        found == self.acknowledged || found.is_some_and(|write| self.unknown.contains(&write))
    }

    fn acknowledge(&mut self, write: u64) {
        self.acknowledged = Some(write);
    }

    fn unknown(&mut self, write: u64) {
        self.unknown.push(write);
    }
}

/// The key `demo/<n>`.
pub fn key(index: u32) -> Bytes {
    Bytes::from(format!("demo/{index}"))
}

/// A value of `bytes` bytes that starts with the write id in hex (readable with `tern get`).
fn value(write: u64, bytes: usize) -> Bytes {
    let mut value = format!("{write:0width$x}", width = WRITE_ID_DIGITS).into_bytes();
    value.resize(bytes.max(WRITE_ID_DIGITS), b'.');
    Bytes::from(value)
}

/// The write id a value carries, if it is one of ours.
pub fn write_id(value: &[u8]) -> Option<u64> {
    let digits = std::str::from_utf8(value.get(..WRITE_ID_DIGITS)?).ok()?;
    u64::from_str_radix(digits, 16).ok()
}

/// Renders a found value for messages.
pub fn describe(found: Option<u64>) -> String {
    match found {
        Some(write) => format!("write {write:x}"),
        None => "absent".to_string(),
    }
}

/// A tiny deterministic generator (splitmix64): the demo needs spread, not cryptography.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Latencies in microseconds, 1 us to 60 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant histogram bounds are valid")
}

/// One task's (or the whole run's) tally.
pub struct Tally {
    pub gets: u64,
    pub puts: u64,
    /// Error kind -> (count, first message).
    pub errors: BTreeMap<&'static str, (u64, String)>,
    pub latency_us: Histogram<u64>,
    pub mismatches: u64,
    pub mismatch_examples: Vec<String>,
    /// Key index -> what it may hold now.
    pub keys: BTreeMap<u32, Possible>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            gets: 0,
            puts: 0,
            errors: BTreeMap::new(),
            latency_us: new_histogram(),
            mismatches: 0,
            mismatch_examples: Vec::new(),
            keys: BTreeMap::new(),
        }
    }

    fn error(&mut self, error: &KvError) {
        let kind = match error {
            KvError::Timeout { .. } => "timeout",
            KvError::Refused(_) => "refused",
            KvError::Security(_) => "security",
            KvError::Config(_) => "configuration",
            KvError::Closed => "closed",
            KvError::Protocol(_) => "protocol",
        };
        self.errors
            .entry(kind)
            .or_insert_with(|| (0, error.to_string()))
            .0 += 1;
    }

    fn merge(&mut self, other: Tally) {
        self.gets += other.gets;
        self.puts += other.puts;
        for (kind, (count, first)) in other.errors {
            self.errors.entry(kind).or_insert((0, first)).0 += count;
        }
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
        self.mismatches += other.mismatches;
        for example in other.mismatch_examples {
            if self.mismatch_examples.len() < MISMATCHES_KEPT_MAX {
                self.mismatch_examples.push(example);
            }
        }
        self.keys.extend(other.keys);
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().map(|(count, _)| count).sum()
    }
}

/// Runs the workload until `shape.duration` passes or `stop` is set; returns the tally and
/// the time it took.
pub async fn run(client: Rc<KvClient>, shape: Shape, stop: Arc<AtomicBool>) -> (Tally, Duration) {
    let done = Rc::new(Cell::new(0u64));
    let started = Instant::now();
    let deadline = started + shape.duration;
    let (sender, receiver) = flume::bounded(shape.clients);
    for task in 0..shape.clients {
        let client = client.clone();
        let done = done.clone();
        let stop = stop.clone();
        let sender = sender.clone();
        tern_net::runtime::spawn(async move {
            let tally = client_task(task, &client, shape, deadline, &stop, &done).await;
            // The receiver collects every task's tally; it outlives them.
            let _ = sender.send_async(tally).await;
        });
    }
    drop(sender);

    let bar = ProgressBar::new(shape.duration.as_millis() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed:>3}] {wide_bar} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message("starting");
    // The rate shown is over the last second, so it reacts to changes.
    let mut samples: Vec<(Instant, u64)> = vec![(started, 0)];
    let mut tally = Tally::new();
    let mut finished = 0;
    while finished < shape.clients {
        let tick = tern_net::runtime::sleep(Duration::from_millis(200));
        let next = futures_lite::future::or(async { Some(receiver.recv_async().await) }, async {
            tick.await;
            None
        })
        .await;
        match next {
            Some(Ok(task_tally)) => {
                tally.merge(task_tally);
                finished += 1;
            }
            // Every sender is gone: every task has reported.
            Some(Err(_)) => break,
            None => {}
        }
        let now = Instant::now();
        samples.push((now, done.get()));
        samples.retain(|(at, _)| now.duration_since(*at) <= Duration::from_millis(1100));
        let (first_at, first_ops) = samples[0];
        let seconds = now.duration_since(first_at).as_secs_f64();
        let rate = if seconds > 0.0 {
            (done.get() - first_ops) as f64 / seconds
        } else {
            0.0
        };
        bar.set_position(now.duration_since(started).as_millis() as u64);
        bar.set_message(format!(
            "{} ops, {} ops/s",
            thousands(done.get()),
            thousands(rate as u64)
        ));
    }
    bar.finish_and_clear();
    (tally, started.elapsed())
}

/// One closed-loop client: its keys are those whose index is `task` modulo the task count.
async fn client_task(
    task: usize,
    client: &KvClient,
    shape: Shape,
    deadline: Instant,
    stop: &AtomicBool,
    done: &Cell<u64>,
) -> Tally {
    let mut tally = Tally::new();
    let own_keys: Vec<u32> = (0..KEY_SPACE)
        .filter(|index| *index as usize % shape.clients == task)
        .collect();
    if own_keys.is_empty() {
        return tally;
    }
    let mut random = Random(0x7e27_0000 ^ task as u64);
    let mut writes = 0u64;
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        let draw = random.next();
        let index = own_keys[(draw % own_keys.len() as u64) as usize];
        let is_read = (draw >> 32) % 100 < u64::from(shape.read_percent);
        let started = Instant::now();
        if is_read {
            let outcome = client.get(key(index)).await;
            let elapsed = started.elapsed();
            match outcome {
                Ok(found) => {
                    tally.gets += 1;
                    record(&mut tally.latency_us, elapsed);
                    let found = found.as_deref().map(write_id);
                    let possible = tally.keys.entry(index).or_default();
                    let allowed = match found {
                        Some(Some(write)) => possible.allows(Some(write)),
                        None => possible.allows(None),
                        Some(None) => false,
                    };
                    if !allowed {
                        tally.mismatches += 1;
                        if tally.mismatch_examples.len() < MISMATCHES_KEPT_MAX {
                            tally.mismatch_examples.push(format!(
                                "get demo/{index} returned {} but its last acknowledged \
                                 write is {}",
                                found.map_or("absent".to_string(), describe),
                                describe(possible.acknowledged)
                            ));
                        }
                    }
                }
                Err(error) => tally.error(&error),
            }
        } else {
            // Unique across tasks: the task number in the high bits.
            let write = ((task as u64) << 40) | writes;
            writes += 1;
            let outcome = client
                .put(key(index), value(write, shape.value_bytes))
                .await;
            let elapsed = started.elapsed();
            let possible = tally.keys.entry(index).or_default();
            match outcome {
                Ok(()) => {
                    tally.puts += 1;
                    record(&mut tally.latency_us, elapsed);
                    possible.acknowledge(write);
                }
                Err(error) => {
                    possible.unknown(write);
                    tally.error(&error);
                }
            }
        }
        done.set(done.get() + 1);
    }
    tally
}

fn record(histogram: &mut Histogram<u64>, elapsed: Duration) {
    histogram.saturating_record((elapsed.as_micros() as u64).max(1));
}

/// 1234567 -> "1,234,567".
pub fn thousands(number: u64) -> String {
    let digits = number.to_string();
    let mut out = String::new();
    for (position, digit) in digits.chars().enumerate() {
        if position > 0 && (digits.len() - position) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A latency for people: "850 us" or "1.23 ms".
pub fn latency(micros: u64) -> String {
    if micros < 1000 {
        format!("{micros} us")
    } else {
        format!("{:.2} ms", micros as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_their_write_id() {
        let written = value(0x002a_0000_0007, 64);
        assert_eq!(written.len(), 64);
        assert_eq!(write_id(&written), Some(0x002a_0000_0007));
        assert_eq!(write_id(b"short"), None);
    }

    #[test]
    fn possible_values_follow_acknowledgements() {
        let mut possible = Possible::default();
        assert!(possible.allows(None) && !possible.written());
        possible.unknown(1);
        assert!(possible.allows(None) && possible.allows(Some(1)) && possible.written());
        possible.acknowledge(2);
        assert!(!possible.allows(None));
        assert!(possible.allows(Some(2)) && possible.allows(Some(1)));
        possible.acknowledge(3);
        // A stale read of an acknowledged, overwritten value is caught.
        assert!(!possible.allows(Some(2)) && possible.allows(Some(3)));
    }

    #[test]
    fn numbers_for_people() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(latency(999), "999 us");
        assert_eq!(latency(1234), "1.23 ms");
    }
}
