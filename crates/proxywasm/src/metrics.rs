//! The filter's own metrics (`proxy_define_metric` and friends), shared by every VM of a plugin.
//! Defining takes a lock; updating is atomic.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// The kind of a metric, as the ABI numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// 0: only goes up.
    Counter,
    /// 1: goes up and down.
    Gauge,
    /// 2: a distribution of recorded values.
    Histogram,
}

impl MetricKind {
    fn from_abi(n: u32) -> Option<MetricKind> {
        Some(match n {
            0 => MetricKind::Counter,
            1 => MetricKind::Gauge,
            2 => MetricKind::Histogram,
            _ => return None,
        })
    }
}

/// A histogram's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// How many values were recorded.
    pub count: u64,
    /// Their sum (wrapping).
    pub sum: u64,
    /// `(upper bound, number of values v with previous bound < v <= upper bound)` for the
    /// bounds 0, 1, 2, 4, ..., 2^63 and `u64::MAX`, non-cumulative; empty buckets included.
    pub buckets: Vec<(u64, u64)>,
}

/// A metric's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetricValue {
    /// A counter.
    Counter(u64),
    /// A gauge (the ABI reads and sets it as `u64`; increments may be negative).
    Gauge(i64),
    /// A histogram.
    Histogram(HistogramSnapshot),
}

/// One metric as [`crate::Plugin::metrics`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricSnapshot {
    /// The name the filter gave it.
    pub name: String,
    /// Its kind.
    pub kind: MetricKind,
    /// Its value.
    pub value: MetricValue,
}

/// Bucket upper bounds: 0, then powers of two, then `u64::MAX`.
const N_BUCKETS: usize = 66;

fn bucket_bound(i: usize) -> u64 {
    match i {
        0 => 0,
        65 => u64::MAX,
        i => 1u64 << (i - 1),
    }
}

fn bucket_of(value: u64) -> usize {
    match value {
        0 => 0,
        // The smallest power of two >= value, as an index: 1 -> 1, 2 -> 2, 3..=4 -> 3, ...
        v if v > 1 << 63 => 65,
        v => (u64::BITS - (v - 1).leading_zeros()) as usize + 1,
    }
}

struct Metric {
    name: String,
    kind: MetricKind,
    /// Counter and gauge value; histogram count.
    value: AtomicI64,
    sum: AtomicU64,
    buckets: Vec<AtomicU64>,
}

/// Why a metric call failed, as an ABI status.
pub(crate) enum MetricError {
    NotFound,
    BadArgument,
}

/// Every metric of one plugin; a metric id is its index plus one.
#[derive(Default)]
pub(crate) struct Metrics {
    metrics: RwLock<Vec<Arc<Metric>>>,
}

impl Metrics {
    /// Defines a metric, or returns the id of the one with the same name and kind (as Envoy).
    pub(crate) fn define(&self, kind: u32, name: &str) -> Result<u32, MetricError> {
        let kind = MetricKind::from_abi(kind).ok_or(MetricError::BadArgument)?;
        let mut metrics = self.metrics.write().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = metrics.iter().position(|m| m.name == name) {
            return if metrics[i].kind == kind { Ok(i as u32 + 1) } else { Err(MetricError::BadArgument) };
        }
        let buckets = if kind == MetricKind::Histogram {
            (0..N_BUCKETS).map(|_| AtomicU64::new(0)).collect()
        } else {
            Vec::new()
        };
        metrics.push(Arc::new(Metric {
            name: name.to_owned(),
            kind,
            value: AtomicI64::new(0),
            sum: AtomicU64::new(0),
            buckets,
        }));
        u32::try_from(metrics.len()).map_err(|_| MetricError::BadArgument)
    }

    fn get(&self, id: u32) -> Result<Arc<Metric>, MetricError> {
        let metrics = self.metrics.read().unwrap_or_else(|e| e.into_inner());
        let i = (id as usize).checked_sub(1).ok_or(MetricError::NotFound)?;
        metrics.get(i).cloned().ok_or(MetricError::NotFound)
    }

    /// `proxy_increment_metric`: counters only up, gauges both ways, histograms not at all.
    pub(crate) fn increment(&self, id: u32, offset: i64) -> Result<(), MetricError> {
        let m = self.get(id)?;
        match m.kind {
            MetricKind::Counter if offset < 0 => Err(MetricError::BadArgument),
            MetricKind::Counter | MetricKind::Gauge => {
                m.value.fetch_add(offset, Ordering::Relaxed);
                Ok(())
            }
            MetricKind::Histogram => Err(MetricError::BadArgument),
        }
    }

    /// `proxy_record_metric`: sets a counter or gauge, records a histogram value.
    pub(crate) fn record(&self, id: u32, value: u64) -> Result<(), MetricError> {
        let m = self.get(id)?;
        match m.kind {
            MetricKind::Counter | MetricKind::Gauge => m.value.store(value as i64, Ordering::Relaxed),
            MetricKind::Histogram => {
                m.value.fetch_add(1, Ordering::Relaxed);
                m.sum.fetch_add(value, Ordering::Relaxed);
                m.buckets[bucket_of(value)].fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// `proxy_get_metric`: counters and gauges (histograms: `BadArgument`, as Envoy).
    pub(crate) fn value(&self, id: u32) -> Result<u64, MetricError> {
        let m = self.get(id)?;
        match m.kind {
            MetricKind::Counter | MetricKind::Gauge => Ok(m.value.load(Ordering::Relaxed) as u64),
            MetricKind::Histogram => Err(MetricError::BadArgument),
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<MetricSnapshot> {
        let metrics = self.metrics.read().unwrap_or_else(|e| e.into_inner());
        metrics
            .iter()
            .map(|m| {
                let value = match m.kind {
                    MetricKind::Counter => MetricValue::Counter(m.value.load(Ordering::Relaxed) as u64),
                    MetricKind::Gauge => MetricValue::Gauge(m.value.load(Ordering::Relaxed)),
                    MetricKind::Histogram => MetricValue::Histogram(HistogramSnapshot {
                        count: m.value.load(Ordering::Relaxed) as u64,
                        sum: m.sum.load(Ordering::Relaxed),
                        buckets: m
                            .buckets
                            .iter()
                            .enumerate()
                            .map(|(i, b)| (bucket_bound(i), b.load(Ordering::Relaxed)))
                            .collect(),
                    }),
                };
                MetricSnapshot { name: m.name.clone(), kind: m.kind, value }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets() {
        for v in [0u64, 1, 2, 3, 4, 5, 1000, 1 << 63, (1 << 63) + 1, u64::MAX] {
            let i = bucket_of(v);
            assert!(v <= bucket_bound(i), "{v} in bucket {i}");
            if i > 0 {
                assert!(v > bucket_bound(i - 1), "{v} in bucket {i}");
            }
        }
    }
}
