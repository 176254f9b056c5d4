/*
 * adjust.o — program `xdp_adjust` (SEC "xdp").
 *
 * Exercises: packet rewriting and the helpers that move the packet's bounds.
 *   - bpf_xdp_adjust_head(+4) to strip one VLAN tag (the MAC addresses are moved up first);
 *   - bpf_xdp_adjust_head(-4) then (+4): push and pop headroom, leaving the frame unchanged;
 *   - bpf_xdp_adjust_head / bpf_xdp_adjust_tail with deltas the kernel refuses (-EINVAL): past the
 *     headroom, or leaving fewer than 14 bytes (ETH_HLEN);
 *   - bpf_xdp_adjust_tail(negative) to trim frames longer than 256 bytes to 256;
 *   - bpf_csum_diff to recompute the IPv4 header checksum after decrementing the TTL. Only the
 *     folded 16-bit result is stored (in the packet): the unfolded 32-bit sum is implementation-
 *     defined.
 * Every helper's return value is counted in `results`, so success and errno agree or differ visibly.
 * The harness should compare the output frame (data_out of BPF_PROG_TEST_RUN) as well as the verdict.
 *
 * Verdicts (after stripping a VLAN tag, if any):
 *   - a frame of exactly 14 bytes: XDP_ABORTED (after two refused adjustments)
 *   - a frame whose VLAN tag is cut short: XDP_ABORTED
 *   - IPv4 with TTL <= 1: XDP_DROP
 *   - IPv4 without options and TTL > 1: TTL decremented, checksum recomputed, XDP_TX
 *   - anything else (IPv4 with options keeps its TTL): XDP_PASS
 *
 * Maps: `results` (hash: {operation, helper return value} -> times seen).
 */
#include "common.h"

#define TRIM_TO 256

enum op {
	OP_HEAD_TOO_FAR = 1,    /* adjust_head leaving < 14 bytes: -EINVAL */
	OP_TAIL_TOO_SHORT = 2,  /* adjust_tail leaving < 14 bytes: -EINVAL */
	OP_STRIP_VLAN = 3,      /* adjust_head(+4): 0 */
	OP_PUSH = 4,            /* adjust_head(-4): 0 */
	OP_POP = 5,             /* adjust_head(+4): 0 */
	OP_PUSH_TOO_FAR = 6,    /* adjust_head(-512), beyond the 256-byte headroom: -EINVAL */
	OP_TRIM = 7,            /* adjust_tail(256 - len): 0 */
	OP_CSUM = 8,            /* bpf_csum_diff: non-negative, counted as 0 */
};

struct result_key {
	__u32 op;
	__s32 ret;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32);
	__type(key, struct result_key);
	__type(value, __u64);
} results SEC(".maps");

static __always_inline long record(__u32 op, long ret)
{
	struct result_key key = { .op = op, .ret = (__s32)ret };
	__u64 one = 1, *seen;

	seen = bpf_map_lookup_elem(&results, &key);
	if (seen)
		__sync_fetch_and_add(seen, 1);
	else
		bpf_map_update_elem(&results, &key, &one, BPF_NOEXIST);
	return ret;
}

/* Folds a 32-bit one's complement sum to the 16-bit Internet checksum. */
static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

SEC("xdp")
int xdp_adjust(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 len = data_end - data;
	__u32 verdict = XDP_PASS;

	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;

	if (len == ETH_HLEN) {
		record(OP_HEAD_TOO_FAR, bpf_xdp_adjust_head(ctx, 1));
		record(OP_TAIL_TOO_SHORT, bpf_xdp_adjust_tail(ctx, -1));
		return XDP_ABORTED;
	}

	if (is_vlan(eth->h_proto)) {
		__u8 macs[2 * ETH_ALEN];

		if ((void *)(eth + 1) + sizeof(struct vlan_hdr) > data_end)
			return XDP_ABORTED;
		__builtin_memcpy(macs, eth, sizeof(macs));
		if (record(OP_STRIP_VLAN, bpf_xdp_adjust_head(ctx, sizeof(struct vlan_hdr))))
			return XDP_ABORTED;
		/* The helper invalidates every packet pointer: load them again. */
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		eth = data;
		if ((void *)(eth + 1) > data_end)
			return XDP_ABORTED;
		/* The encapsulated EtherType now sits where the outer one was. */
		__builtin_memcpy(eth, macs, sizeof(macs));
	}

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			return XDP_PASS;
		if (ip->ttl <= 1)
			return XDP_DROP;
		if (ip->ihl == 5) {
			__s64 sum;

			ip->ttl--;
			ip->check = 0;
			sum = bpf_csum_diff(0, 0, (__be32 *)ip, sizeof(*ip), 0);
			record(OP_CSUM, sum < 0 ? sum : 0);
			ip->check = csum_fold((__u32)sum);
			verdict = XDP_TX;
		}
	} else if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
		/* Push and pop headroom, then try adjustments the kernel refuses. */
		if (record(OP_PUSH, bpf_xdp_adjust_head(ctx, -4)) == 0)
			record(OP_POP, bpf_xdp_adjust_head(ctx, 4));
		record(OP_PUSH_TOO_FAR, bpf_xdp_adjust_head(ctx, -512));
		record(OP_HEAD_TOO_FAR, bpf_xdp_adjust_head(ctx, len));
		record(OP_TAIL_TOO_SHORT, bpf_xdp_adjust_tail(ctx, -(int)len));
	}

	/* Packet pointers may be stale after the helpers above; the length comes from the context. */
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	len = data_end - data;
	if (len > TRIM_TO)
		record(OP_TRIM, bpf_xdp_adjust_tail(ctx, TRIM_TO - (int)len));
	return verdict;
}

DUET_LICENSE;
