//! Kernel timing of one program over packets, via `BPF_PROG_TEST_RUN`: the anchor every
//! userspace engine's speed is compared with.

use crate::error::KernelError;
use crate::{TestRunInput, test_run};

/// Repetitions of the calibration run.
const CALIBRATION_REPEAT: u32 = 1_000;
/// Each packet is repeated until its runs take at least this long, so the kernel's nanosecond
/// clock (`ktime_get_ns`) resolution and the timer's start/stop cost vanish in the total.
const MIN_NS_PER_PACKET: f64 = 1_000_000.0;
/// The whole measurement aims at about this long, to bound large captures.
const TARGET_TOTAL_NS: f64 = 2_000_000_000.0;
/// Never fewer repetitions than this per packet.
const MIN_REPEAT: u32 = 1_000;

/// The result of [`bench()`].
#[derive(Clone, Debug, PartialEq)]
pub struct BenchOutput {
    /// Repetitions per packet in the measured run.
    pub repeat: u32,
    /// Packets the kernel ran (frames it refused, e.g. shorter than 14 bytes, are left out).
    pub packets: usize,
    /// Packets the kernel refused to test-run.
    pub refused: usize,
    /// The mean over packets of the kernel's time per run, in nanoseconds.
    pub ns_per_packet: f64,
    /// The fastest and slowest packet's time per run, in nanoseconds.
    pub min_ns: u32,
    /// See `min_ns`.
    pub max_ns: u32,
}

/// Measures the kernel's time per run of `input.program` on each packet with
/// `BPF_PROG_TEST_RUN`, and averages over the packets.
///
/// With `input.repeat` 0, the repetition count is chosen by a calibration run: each packet runs
/// at least 1 ms in total, unless that would take the capture past about 2 s, and never fewer
/// than 1000 times.
/// The kernel reports each packet's time per run as whole nanoseconds, rounded down, so the mean
/// may read up to 1 ns low. Map side effects accumulate over the repetitions, as in the kernel.
pub fn bench(input: &TestRunInput<'_>) -> Result<BenchOutput, KernelError> {
    let repeat = if input.repeat > 0 {
        input.repeat
    } else {
        let calibration = test_run(&TestRunInput { repeat: CALIBRATION_REPEAT, ..*input })?;
        let times: Vec<f64> =
            calibration.packets.iter().filter(|p| p.result.is_ok()).map(|p| f64::from(p.duration_ns.max(1))).collect();
        if times.is_empty() {
            CALIBRATION_REPEAT
        } else {
            let mean = times.iter().sum::<f64>() / times.len() as f64;
            let per_packet = MIN_NS_PER_PACKET / mean;
            let budget = TARGET_TOTAL_NS / (mean * times.len() as f64);
            // Saturating float-to-int casts: huge values clamp to u32::MAX.
            (per_packet.min(budget).max(f64::from(MIN_REPEAT))).ceil() as u32
        }
    };
    let out = test_run(&TestRunInput { repeat, ..*input })?;
    let times: Vec<u32> = out.packets.iter().filter(|p| p.result.is_ok()).map(|p| p.duration_ns).collect();
    let refused = out.packets.len() - times.len();
    let ns_per_packet =
        if times.is_empty() { 0.0 } else { times.iter().map(|&t| f64::from(t)).sum::<f64>() / times.len() as f64 };
    Ok(BenchOutput {
        repeat,
        packets: times.len(),
        refused,
        ns_per_packet,
        min_ns: times.iter().copied().min().unwrap_or(0),
        max_ns: times.iter().copied().max().unwrap_or(0),
    })
}
