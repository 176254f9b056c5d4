/*
 * ip_options.o — program `xdp_ip_options` (SEC "xdp").
 *
 * Exercises: bounded loops that stay loops (unrolling disabled, so the object has backward jumps):
 * a walk over up to 16 IPv4 options with a constant bound and variable packet offsets, and a sum
 * over up to 16 bytes of the transport header; hash map updates from a loop body.
 *
 * Verdicts:
 *   - not IPv4 (after an untagged Ethernet header): XDP_PASS
 *   - IPv4 header truncated, IHL < 5, or an option whose length is < 2 or runs past the header:
 *     XDP_ABORTED
 *   - an option list with loose or strict source routing (types 131, 137): XDP_DROP
 *   - anything else: XDP_PASS
 *
 * Maps: `opt_kinds` (hash: option type -> times seen), `l4_bytes` (array: [0] sum of the first up
 * to 16 transport bytes of every IPv4 packet, [1] number of bytes summed).
 */
#include "common.h"

#define MAX_OPTIONS 16
#define MAX_L4_BYTES 16

/* IPOPT_END (0), IPOPT_NOOP (1), IPOPT_LSRR (131) and IPOPT_SSRR (137) come from <linux/ip.h>. */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} opt_kinds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} l4_bytes SEC(".maps");

static __always_inline void count_kind(__u32 kind)
{
	__u64 one = 1;
	__u64 *seen = bpf_map_lookup_elem(&opt_kinds, &kind);

	if (seen)
		__sync_fetch_and_add(seen, 1);
	else
		bpf_map_update_elem(&opt_kinds, &kind, &one, BPF_NOEXIST);
}

SEC("xdp")
int xdp_ip_options(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u8 *opts, *l4;
	__u32 opts_len, off = 0, sum = 0, n = 0, key;
	__u64 *slot;
	int i, source_routed = 0;

	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return XDP_ABORTED;
	if (ip->ihl < 5)
		return XDP_ABORTED;
	opts = (__u8 *)(ip + 1);
	opts_len = (ip->ihl - 5) * 4;

#pragma clang loop unroll(disable)
	for (i = 0; i < MAX_OPTIONS; i++) {
		__u8 *p;
		__u8 kind, len;

		if (off >= opts_len)
			break;
		p = opts + off;
		if ((void *)(p + 1) > data_end)
			return XDP_ABORTED;
		kind = p[0];
		if (kind == IPOPT_END)
			break;
		count_kind(kind);
		/*
		 * `off` never exceeds 40 here, so the masks below change nothing at run time; they give
		 * every path the same range for `off`, which lets the verifier prune the loop's states
		 * instead of following each combination of option lengths.
		 */
		if (kind == IPOPT_NOOP) {
			off = (off + 1) & 0x3f;
			continue;
		}
		if ((void *)(p + 2) > data_end)
			return XDP_ABORTED;
		len = p[1];
		if (len < 2 || off + len > opts_len)
			return XDP_ABORTED;
		if (kind == IPOPT_LSRR || kind == IPOPT_SSRR)
			source_routed = 1;
		off = (off + len) & 0x3f;
	}

	l4 = (__u8 *)ip + ip->ihl * 4;
#pragma clang loop unroll(disable)
	for (i = 0; i < MAX_L4_BYTES; i++) {
		if ((void *)(l4 + i + 1) > data_end)
			break;
		sum += l4[i];
		n++;
	}
	key = 0;
	slot = bpf_map_lookup_elem(&l4_bytes, &key);
	if (slot)
		*slot += sum;
	key = 1;
	slot = bpf_map_lookup_elem(&l4_bytes, &key);
	if (slot)
		*slot += n;

	return source_routed ? XDP_DROP : XDP_PASS;
}

DUET_LICENSE;
