//! Histograms aggregated where they are recorded: every histogram of [`super::names`] is a set
//! of bucket counters and a sum, kept per registration (one per worker thread in practice) and
//! summed only when `/metrics` is rendered.
//!
//! The exporter's own histograms keep every sample until its next upkeep drains them into
//! buckets, so its memory grows with the request rate between upkeeps. Here a sample costs a
//! bucket search over the bounds of [`super::names`] and two uncontended relaxed atomic updates
//! (its bucket and the sum) on a cache-line-aligned [`Shard`] that only its own worker writes:
//! no allocation, no lock, no sample kept, and memory fixed once the handles are registered.
//!
//! [`Histograms`] is the registry behind [`super::Recorder`]: `register_histogram` of a name
//! that [`super::names::ALL`] defines as a histogram lands here, and [`Histograms::render`]
//! appends the Prometheus exposition of every registered series (cumulative `_bucket{le=..}`
//! lines ending with `+Inf`, `_sum`, `_count`; `# HELP` and `# TYPE` once per name) with the
//! exporter's own formatting helpers, so the text matches what the exporter wrote before.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use metrics::{HistogramFn, Key, KeyName, SharedString};
use metrics_exporter_prometheus::formatting::{
    key_to_parts, write_help_line, write_metric_line, write_type_line,
};

use super::names::{self, MetricKind};

/// Slots of the longest bucket list in [`names::ALL`], plus one for the `+Inf` bucket.
const MAX_SLOTS: usize = {
    let mut max = 0;
    let mut i = 0;
    while i < names::ALL.len() {
        if let MetricKind::Histogram(bounds) = names::ALL[i].kind {
            if bounds.len() > max {
                max = bounds.len();
            }
        }
        i += 1;
    }
    max + 1
};

/// One writer's part of a histogram series: a count per bucket (the last one is `+Inf`) and
/// the sum of the values, as `f64` bits. Aligned to a cache line so that two workers' shards
/// never share one.
#[repr(align(64))]
pub(super) struct Shard {
    bounds: &'static [f64],
    sum: AtomicU64,
    counts: [AtomicU64; MAX_SLOTS],
}

impl Shard {
    /// An empty shard with these upper bounds (ascending, at most `MAX_SLOTS - 1` of them).
    fn new(bounds: &'static [f64]) -> Self {
        assert!(bounds.len() < MAX_SLOTS, "more buckets than names::ALL has");
        Self {
            bounds,
            sum: AtomicU64::new(0f64.to_bits()),
            counts: [const { AtomicU64::new(0) }; MAX_SLOTS],
        }
    }

    /// The index of the bucket of `value`: the first bound `>= value` (Prometheus buckets are
    /// "less than or equal"), or `bounds.len()` (`+Inf`) past the last.
    #[inline]
    fn bucket(&self, value: f64) -> usize {
        self.bounds.partition_point(|&b| b < value)
    }

    /// Adds this shard's counts (not cumulative) and sum to `counts` and `sum`.
    fn add_to(&self, counts: &mut [u64], sum: &mut f64) {
        for (total, c) in counts.iter_mut().zip(&self.counts) {
            *total += c.load(Relaxed);
        }
        *sum += f64::from_bits(self.sum.load(Relaxed));
    }
}

impl HistogramFn for Shard {
    #[inline]
    fn record(&self, value: f64) {
        self.record_many(value, 1);
    }

    #[inline]
    fn record_many(&self, value: f64, count: usize) {
        // A NaN has no bucket and would poison the sum for good.
        if value.is_nan() || count == 0 {
            return;
        }
        self.counts[self.bucket(value)].fetch_add(count as u64, Relaxed);
        let add = if count == 1 {
            value
        } else {
            value * count as f64
        };
        // Only this shard's worker writes it, so the exchange succeeds at the first try; the
        // loop keeps the sum right if a handle is ever shared between threads.
        let mut old = self.sum.load(Relaxed);
        while let Err(now) = self.sum.compare_exchange_weak(
            old,
            (f64::from_bits(old) + add).to_bits(),
            Relaxed,
            Relaxed,
        ) {
            old = now;
        }
    }
}

/// One labelled series: its key, its label pairs as rendered, and one shard per registration.
struct Series {
    key: Key,
    labels: Vec<String>,
    shards: Vec<Arc<Shard>>,
}

/// Every series of one histogram name.
struct Family {
    name: &'static str,
    bounds: &'static [f64],
    series: Vec<Series>,
}

#[derive(Default)]
struct Inner {
    /// In order of first registration.
    families: Vec<Family>,
    /// `# HELP` text by name, from `describe_histogram`.
    help: HashMap<String, SharedString>,
}

/// The registry of the histograms of [`names::ALL`]: shards handed out by [`Self::register`],
/// summed by [`Self::render`]. Its lock is taken when a handle is registered (worker startup)
/// and when `/metrics` is rendered, never when a value is recorded.
#[derive(Default)]
pub(super) struct Histograms {
    inner: Mutex<Inner>,
}

impl Histograms {
    /// A shard for `key`, or `None` if [`names::ALL`] does not define its name as a histogram
    /// (the caller then falls back to the exporter's own histogram). A shard that no handle
    /// holds any more is handed out again (its counts stay), so registering the same series
    /// over and over (a `histogram!` per call) does not grow memory; otherwise every
    /// registration gets a shard of its own, so each worker writes only its own cache lines.
    pub(super) fn register(&self, key: &Key) -> Option<metrics::Histogram> {
        let def = names::find(key.name())?;
        let MetricKind::Histogram(bounds) = def.kind else {
            return None;
        };
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let families = &mut inner.families;
        let family = match families.iter().position(|f| f.name == def.name) {
            Some(i) => &mut families[i],
            None => {
                families.push(Family {
                    name: def.name,
                    bounds,
                    series: Vec::new(),
                });
                families.last_mut().expect("just pushed")
            }
        };
        let series = match family.series.iter().position(|s| s.key == *key) {
            Some(i) => &mut family.series[i],
            None => {
                family.series.push(Series {
                    key: key.clone(),
                    labels: key_to_parts(key, None).1,
                    shards: Vec::new(),
                });
                family.series.last_mut().expect("just pushed")
            }
        };
        // A strong count of 1 is the registry's own reference: every handle to it was dropped.
        // Only this function clones shards, under the lock, so the count cannot rise meanwhile.
        let shard = match series.shards.iter().find(|s| Arc::strong_count(s) == 1) {
            Some(free) => free.clone(),
            None => {
                let shard = Arc::new(Shard::new(bounds));
                series.shards.push(shard.clone());
                shard
            }
        };
        Some(metrics::Histogram::from_arc(shard))
    }

    /// Keeps `help` as the `# HELP` text of `name`, if it is one of ours (returns whether).
    pub(super) fn describe(&self, name: &KeyName, help: &SharedString) -> bool {
        if !names::find(name.as_str()).is_some_and(|d| matches!(d.kind, MetricKind::Histogram(_))) {
            return false;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner
            .help
            .entry(name.as_str().to_owned())
            .or_insert_with(|| help.clone());
        true
    }

    /// Appends the exposition of every registered series to `out`, each series the sum of its
    /// shards.
    pub(super) fn render(&self, out: &mut String) {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut counts = [0u64; MAX_SLOTS];
        for family in &inner.families {
            if let Some(help) = inner.help.get(family.name) {
                write_help_line(out, family.name, help);
            }
            write_type_line(out, family.name, "histogram");
            let slots = family.bounds.len() + 1;
            for series in &family.series {
                let counts = &mut counts[..slots];
                counts.fill(0);
                let mut sum = 0.0;
                for shard in &series.shards {
                    shard.add_to(counts, &mut sum);
                }
                let mut cumulative = 0;
                for (le, count) in family.bounds.iter().zip(counts.iter()) {
                    cumulative += count;
                    write_metric_line(
                        out,
                        family.name,
                        Some("bucket"),
                        &series.labels,
                        Some(("le", le)),
                        cumulative,
                        None,
                    );
                }
                cumulative += counts[slots - 1];
                write_metric_line(
                    out,
                    family.name,
                    Some("bucket"),
                    &series.labels,
                    Some(("le", "+Inf")),
                    cumulative,
                    None,
                );
                write_metric_line::<&str, f64>(
                    out,
                    family.name,
                    Some("sum"),
                    &series.labels,
                    None,
                    sum,
                    None,
                );
                write_metric_line::<&str, u64>(
                    out,
                    family.name,
                    Some("count"),
                    &series.labels,
                    None,
                    cumulative,
                    None,
                );
            }
            out.push('\n');
        }
    }

    /// Shards held for all series (for tests: registration must not grow it without bound).
    #[cfg(test)]
    pub(super) fn shard_count(&self) -> usize {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner
            .families
            .iter()
            .flat_map(|f| &f.series)
            .map(|s| s.shards.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::names::{DURATION_BUCKETS, REQUEST_DURATION_SECONDS};

    fn key() -> Key {
        Key::from_parts(
            REQUEST_DURATION_SECONDS,
            vec![metrics::Label::new("protocol", "cgi")],
        )
    }

    #[test]
    fn bucket_search_matches_a_linear_scan() {
        let shard = Shard::new(DURATION_BUCKETS);
        let mut values = vec![0.0, -1.0, 1e-9, 31.0, f64::INFINITY, f64::MAX];
        for &b in DURATION_BUCKETS {
            values.extend([b, b * (1.0 - 1e-12), b * (1.0 + 1e-12)]);
        }
        for v in values {
            let linear = DURATION_BUCKETS
                .iter()
                .position(|&b| v <= b)
                .unwrap_or(DURATION_BUCKETS.len());
            assert_eq!(shard.bucket(v), linear, "{v}");
        }
    }

    #[test]
    fn nan_is_dropped_and_record_many_counts_each() {
        let shard = Shard::new(DURATION_BUCKETS);
        shard.record(f64::NAN);
        shard.record_many(0.002, 3);
        shard.record_many(0.002, 0);
        let mut counts = [0; MAX_SLOTS];
        let mut sum = 0.0;
        shard.add_to(&mut counts, &mut sum);
        assert_eq!(counts.iter().sum::<u64>(), 3);
        assert_eq!(counts[4], 3);
        assert!((sum - 0.006).abs() < 1e-15, "{sum}");
    }

    #[test]
    fn shards_are_reused_once_their_handles_are_dropped() {
        let histograms = Histograms::default();
        let held: Vec<_> = (0..4)
            .map(|_| histograms.register(&key()).unwrap())
            .collect();
        assert_eq!(histograms.shard_count(), 4);
        for _ in 0..1000 {
            histograms.register(&key()).unwrap().record(0.01);
        }
        assert_eq!(histograms.shard_count(), 5);
        drop(held);
        for _ in 0..10 {
            histograms.register(&key()).unwrap().record(0.01);
        }
        assert_eq!(histograms.shard_count(), 5);
        let mut out = String::new();
        histograms.render(&mut out);
        assert!(
            out.contains("ringgate_request_duration_seconds_count{protocol=\"cgi\"} 1010\n"),
            "{out}"
        );
    }

    #[test]
    fn only_histograms_of_names_are_ours() {
        let histograms = Histograms::default();
        assert!(histograms
            .register(&Key::from_name("other_seconds"))
            .is_none());
        assert!(histograms
            .register(&Key::from_name(crate::metrics::names::ABORTS_TOTAL))
            .is_none());
        assert!(!histograms.describe(&KeyName::from("other_seconds"), &"x".into()));
        assert!(histograms.describe(&KeyName::from(REQUEST_DURATION_SECONDS), &"x".into()));
    }

    #[test]
    fn a_shard_fills_its_own_cache_lines() {
        assert_eq!(std::mem::align_of::<Shard>(), 64);
        assert_eq!(MAX_SLOTS, DURATION_BUCKETS.len() + 1);
    }
}
