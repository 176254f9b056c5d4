/* One stage of a tail-call chain: the stage number travels in the packet's metadata, a
 * counter per stage is bumped, and a non-inlined subprogram tail-calls the next stage
 * through a PROG_ARRAY (tail calls from bpf-to-bpf subprograms); the end of the chain passes
 * the packet, an empty slot in the middle of the chain aborts.
 * privileged: accept
 * unprivileged: accept
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_STAGES 8

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, MAX_STAGES);
	__type(key, __u32);
	__type(value, __u32);
} chain SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_STAGES);
	__type(key, __u32);
	__type(value, __u64);
} stage_hits SEC(".maps");

static __attribute__((noinline)) int next_stage(struct xdp_md *ctx, __u32 stage)
{
	if (stage + 1 >= MAX_STAGES)
		return XDP_PASS;
	bpf_tail_call(ctx, &chain, stage + 1);
	return XDP_ABORTED;
}

SEC("xdp")
int xdp_stage(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	__u32 *stage = (void *)(long)ctx->data_meta;
	__u32 current = 0;
	__u64 *hits;

	if ((void *)(stage + 1) <= data) {
		current = *stage;
		if (current >= MAX_STAGES)
			return XDP_DROP;
		*stage = current + 1;
	}
	hits = bpf_map_lookup_elem(&stage_hits, &current);
	if (hits)
		*hits += 1;
	return next_stage(ctx, current);
}

char _license[] SEC("license") = "GPL";
