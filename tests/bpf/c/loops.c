/*
 * loops.o — programs `xdp_loops`, `xdp_loop_frames` and `xdp_loop_bytes` (SEC "xdp").
 *
 * Exercises bpf_loop (helper 181) and its callbacks (`lddw rX, func`, src 4): how many calls are
 * made for a count taken from the frame, a callback that stops the loop early, one that calls a
 * function of its own and uses its own stack, a loop inside a bpf-to-bpf function (the callback
 * two frames down), a callback reading the frame through pointers its context holds, and the
 * helper's own answers: 0 calls for a count of 0, -EINVAL for flags, -E2BIG beyond 1 << 23 (as
 * a 32-bit value where the kernel inlines the loop, its flags being 0 on every path; 64-bit
 * where it calls the helper).
 *
 * Determinism: nothing depends on time or CPU.
 *
 * Verdicts: XDP_DROP when a sum the callbacks computed is odd, else XDP_PASS.

 *
 * Maps:
 *   `results`  array (16 entries): [slot] = the last frame's value of each measurement below
 *   `calls`    array (16 entries): [i] = how many times a callback ran with index i (all frames)
 */
#include "common.h"

#define E2BIG_LOOPS ((1u << 23) + 1)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} results SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} calls SEC(".maps");

static void record(__u32 slot, __u64 value)
{
	bpf_map_update_elem(&results, &slot, &value, BPF_ANY);
}

/* Counts a call with index `i` in `calls` (indexes past the map's end are not counted). */
static void count_call(__u32 i)
{
	__u64 *n = bpf_map_lookup_elem(&calls, &i);
	if (n)
		__sync_fetch_and_add(n, 1);
}

struct sum_ctx {
	__u64 sum;
	__u32 stop_at;
};

/* Adds its index (times 3) and stops after index `stop_at`. */
static long add_until(__u32 i, void *data)
{
	struct sum_ctx *c = data;
	count_call(i);
	c->sum += (__u64)i * 3;
	return i >= c->stop_at ? 1 : 0;
}

/* Never called: the loops using it make no call. */
static long never(__u32 i, void *data)
{
	*(__u64 *)data += 1000;
	return 0;
}

static __attribute__((noinline)) __u64 mix(__u64 a, __u64 b)
{
	return (a << 5) ^ (a >> 3) ^ b;
}

/* Uses a stack of its own (the caller's is one frame up) and calls a function. */
static long scramble(__u32 i, void *data)
{
	volatile __u64 local[6];
	__u64 *acc = data;
	for (int k = 0; k < 6; k++)
		local[k] = mix(*acc + k, i);
	*acc = local[0] + local[5] + i;
	return 0;
}

struct frame_ctx {
	__u8 *data;
	__u8 *end;
	__u64 sum;
};

/* Sums the frame's byte at index i, stopping at the end of the frame. */
static long sum_bytes(__u32 i, void *data)
{
	struct frame_ctx *c = data;
	__u8 *p = c->data + (i & 63);
	if (p + 1 > c->end)
		return 1;
	c->sum += *p;
	return 0;
}

/* A loop one bpf-to-bpf frame down: its callback runs two frames below the program. */
static __attribute__((noinline)) __u64 nested(__u32 n)
{
	struct sum_ctx c = { .sum = 7, .stop_at = 100 };
	long made = bpf_loop(n, add_until, &c, 0);
	return c.sum * 1000 + (__u64)made;
}

SEC("xdp")
int xdp_loops(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;
	__u32 len = (__u32)(end - data);

	/* A count from the frame (0..15), stopped early at an index from the frame. */
	struct sum_ctx c = { .sum = 0, .stop_at = 9 };
	if (data + 1 <= end)
		c.stop_at = *data % 11;
	long made = bpf_loop(len & 15, add_until, &c, 0);
	record(0, (__u64)made);
	record(1, c.sum);

	/* The helper's own answers. */
	__u64 untouched = 5;
	record(2, (__u64)bpf_loop(0, never, &untouched, 0));
	record(3, (__u64)bpf_loop(4, never, &untouched, 1));
	record(4, (__u64)bpf_loop(E2BIG_LOOPS, never, &untouched, 0));
	record(5, untouched);

	/*
	 * Flags the verifier cannot prove 0 (they are 0 for every frame shorter than 1 MiB): the
	 * kernel calls the helper instead of inlining the loop, and the helper's -E2BIG is 64-bit.
	 */
	__u64 flags = len >> 20;
	record(11, (__u64)bpf_loop(E2BIG_LOOPS, never, &untouched, flags));
	struct sum_ctx h = { .sum = 1, .stop_at = 4 };
	record(12, (__u64)bpf_loop(len & 7, add_until, &h, flags));
	record(13, h.sum);

	return (c.sum & 1) ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int xdp_loop_frames(struct xdp_md *ctx)
{
	__u32 len = (__u32)(ctx->data_end - ctx->data);

	/* A callback with its own stack and calls. */
	__u64 acc = len;
	record(6, (__u64)bpf_loop(5, scramble, &acc, 0));
	record(7, acc);

	/* The callback two frames down. */
	__u64 n = nested(len % 7);
	record(8, n);

	return ((acc ^ n) & 1) ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int xdp_loop_bytes(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;

	/* The frame's bytes, read by the callback through pointers in its context (at most 64). */
	struct frame_ctx f = { .data = data, .end = end, .sum = 0 };
	long made = bpf_loop(64, sum_bytes, &f, 0);
	record(9, (__u64)made);
	record(10, f.sum);

	return (f.sum & 1) ? XDP_DROP : XDP_PASS;
}

DUET_LICENSE;
