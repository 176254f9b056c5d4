/*
 * nondet.o — program `xdp_nondet` (SEC "xdp").
 *
 * Exercises: bpf_ktime_get_ns and bpf_get_prandom_u32. Their values differ between the kernel and
 * duet (and between runs), so they only ever land in the map named `nondet`, which the differential
 * comparison excludes; the verdict and every other map stay deterministic. duet makes time and
 * randomness injectable, so its own tests can still pin these values.
 *
 * Verdict: always XDP_PASS.
 *
 * Maps: `nondet` (array: [0] last ktime, [1] last random number, [2] last ktime delta between two
 * calls), `calls` (array: [0] packets seen, [1] times the clock went backwards between two reads,
 * which must stay 0).
 */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} nondet SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} calls SEC(".maps");

static __always_inline void put(__u32 key, __u64 value)
{
	bpf_map_update_elem(&nondet, &key, &value, BPF_ANY);
}

SEC("xdp")
int xdp_nondet(struct xdp_md *ctx)
{
	__u64 t0 = bpf_ktime_get_ns();
	__u64 t1;

	put(0, t0);
	put(1, bpf_get_prandom_u32());
	t1 = bpf_ktime_get_ns();
	put(2, t1 - t0);
	count_in(&calls, 0);
	/* A monotonic clock never goes backwards, so this stays deterministic: always 0. */
	if (t1 < t0)
		count_in(&calls, 1);
	return XDP_PASS;
}

DUET_LICENSE;
