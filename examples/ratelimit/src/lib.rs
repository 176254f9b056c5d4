//! `ratelimit`: a per-source token-bucket rate limiter for XDP, written once with the duet SDK.
//!
//! Every IPv4 source address has a bucket of `burst` tokens that refills at `rate` tokens per
//! second (by `ktime_get_ns`); a packet takes one token, and is dropped when there is none.
//! Buckets live in an LRU map, so a flood of new sources evicts the idlest buckets instead of
//! failing. Non-IPv4 packets pass untouched and uncounted.
//!
//! Maps:
//! - `BUCKETS`: LRU hash, key the IPv4 source address in packet order, value [`Bucket`], 4096
//!   entries.
//! - `CONFIG`: array of one [`Config`]; a zero field means the default ([`DEFAULT_RATE`],
//!   [`DEFAULT_BURST`]); bursts above [`MAX_BURST`] are capped. Seed it with `duet run --maps-in`.
//! - `STATS`: array of 2 `u64`: packets passed (index 0) and dropped (index 1).
//!
//! Tokens are counted in billionths (a token is `NANOS` units), so refilling is exact integer
//! arithmetic: `elapsed_ns * rate`. Verdicts depend on time only through `ktime_get_ns`, so
//! executors with an injected clock (`duet run --deterministic`, host tests) are deterministic.
#![no_std]

use duet::{Array, BPF_ANY, LruHashMap, XdpAction, XdpContext, ktime_get_ns};

/// Default refill rate, tokens per second.
pub const DEFAULT_RATE: u64 = 100;
/// Default bucket size, tokens.
pub const DEFAULT_BURST: u64 = 10;
/// The largest burst `CONFIG` may ask for (so `burst * NANOS` fits in a `u64`).
pub const MAX_BURST: u64 = 1_000_000;
/// Units per token.
pub const NANOS: u64 = 1_000_000_000;

/// Index of the passed-packets counter in `STATS`.
pub const STAT_PASSED: u32 = 0;
/// Index of the dropped-packets counter in `STATS`.
pub const STAT_DROPPED: u32 = 1;

/// One source's bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, duet::Pod)]
#[repr(C)]
pub struct Bucket {
    /// Tokens left, in billionths of a token.
    pub tokens: u64,
    /// When the bucket was last refilled (`ktime_get_ns`).
    pub last_ns: u64,
}

/// Limits; zero means the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, duet::Pod)]
#[repr(C)]
pub struct Config {
    /// Tokens per second.
    pub rate: u64,
    /// Bucket size in tokens.
    pub burst: u64,
}

/// Buckets by IPv4 source address.
#[duet::map]
static BUCKETS: LruHashMap<[u8; 4], Bucket> = LruHashMap::with_max_entries(4096, 0);

/// The limits, at index 0.
#[duet::map]
static CONFIG: Array<Config> = Array::with_max_entries(1, 0);

/// Packets passed and dropped.
#[duet::map]
static STATS: Array<u64> = Array::with_max_entries(2, 0);

#[duet::xdp]
fn ratelimit(ctx: XdpContext) -> XdpAction {
    let Some(ip) = ctx.ipv4() else { return XdpAction::Pass };
    let config = CONFIG.get_or_default(0);
    let rate = if config.rate == 0 { DEFAULT_RATE } else { config.rate };
    let burst = if config.burst == 0 { DEFAULT_BURST } else { config.burst.min(MAX_BURST) };
    let capacity = burst * NANOS;

    let now = ktime_get_ns();
    let mut bucket = BUCKETS.get(&ip.src).unwrap_or(Bucket { tokens: capacity, last_ns: now });
    // Past the time a bucket takes to fill, waiting longer adds nothing; capping the elapsed
    // time first keeps `elapsed * rate` at most `capacity`, so nothing overflows. (Plain
    // arithmetic on purpose: `saturating_mul` and `checked_mul` of u64 need a 128-bit multiply,
    // which the BPF target does not have.)
    let fill_ns = capacity.checked_div(rate).unwrap_or(0);
    let elapsed = now.saturating_sub(bucket.last_ns).min(fill_ns);
    bucket.tokens = (bucket.tokens.min(capacity) + elapsed * rate).min(capacity);
    bucket.last_ns = now;

    let verdict = if bucket.tokens >= NANOS {
        bucket.tokens -= NANOS;
        XdpAction::Pass
    } else {
        XdpAction::Drop
    };
    // An LRU map makes room by evicting, so this does not fail for lack of space.
    let _ = BUCKETS.insert(&ip.src, &bucket, BPF_ANY);
    let _ = STATS.add_u64(if verdict == XdpAction::Pass { STAT_PASSED } else { STAT_DROPPED }, 1);
    verdict
}

#[cfg(test)]
mod tests {
    use duet::testing::{run_xdp, set_clock, udp_frame};

    use super::*;

    fn send(src: [u8; 4]) -> XdpAction {
        run_xdp(ratelimit, &mut udp_frame(src, [10, 0, 0, 2], 1000, 53, 0))
    }

    #[test]
    fn a_burst_passes_then_the_rest_drops() {
        set_clock(1_000_000_000, 0);
        let verdicts: [XdpAction; 12] = core::array::from_fn(|_| send([10, 0, 0, 1]));
        assert!(verdicts[..10].iter().all(|v| *v == XdpAction::Pass), "{verdicts:?}");
        assert_eq!(verdicts[10..], [XdpAction::Drop, XdpAction::Drop]);
        assert_eq!(STATS.get(STAT_PASSED), Some(10));
        assert_eq!(STATS.get(STAT_DROPPED), Some(2));
        // Another source has its own bucket.
        assert_eq!(send([10, 0, 0, 7]), XdpAction::Pass);
    }

    #[test]
    fn tokens_refill_with_time() {
        set_clock(5_000_000_000, 0);
        for _ in 0..10 {
            assert_eq!(send([10, 0, 0, 1]), XdpAction::Pass);
        }
        assert_eq!(send([10, 0, 0, 1]), XdpAction::Drop);
        // 100 tokens/s: 10 ms later there is exactly one token again.
        set_clock(5_010_000_000, 0);
        assert_eq!(send([10, 0, 0, 1]), XdpAction::Pass);
        assert_eq!(send([10, 0, 0, 1]), XdpAction::Drop);
        // A long pause refills to the burst size, not beyond.
        set_clock(600_000_000_000, 0);
        let passed = (0..20).filter(|_| send([10, 0, 0, 1]) == XdpAction::Pass).count();
        assert_eq!(passed, 10);
    }

    #[test]
    fn config_overrides_the_defaults() {
        CONFIG.set(0, &Config { rate: 1, burst: 2 }).unwrap();
        set_clock(1_000_000_000, 0);
        assert_eq!(send([10, 0, 0, 3]), XdpAction::Pass);
        assert_eq!(send([10, 0, 0, 3]), XdpAction::Pass);
        assert_eq!(send([10, 0, 0, 3]), XdpAction::Drop);
    }

    #[test]
    fn non_ipv4_passes_uncounted() {
        let mut arp = udp_frame([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 0);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(run_xdp(ratelimit, &mut arp), XdpAction::Pass);
        assert_eq!(STATS.get(STAT_PASSED), Some(0));
    }
}
