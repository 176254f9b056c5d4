/* An xdp-filter-like filter behind up to two VLAN tags (802.1Q or 802.1ad, parsed by an
 * unrolled loop): drops blocked IPv4 sources and blocked VLAN ids, counts per VLAN id.
 * privileged: accept
 * unprivileged: accept
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define VLAN_MAX_DEPTH 2
#define VLAN_VID_MASK 0x0fff

struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} blocked_src SEC(".maps");

/* Per VLAN id: bit 0 drops the VLAN; the rest of the value counts packets seen. */
struct vlan_stat {
	__u64 flags;
	__u64 packets;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct vlan_stat);
} vlans SEC(".maps");

static __always_inline int is_vlan(__be16 proto)
{
	return proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD);
}

SEC("xdp")
int xdp_filter_vlan(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct vlan_hdr *vh;
	struct vlan_stat *st;
	struct iphdr *ip;
	__u32 vid = 0;
	__be16 proto;
	void *cur;
	__u32 src;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	proto = eth->h_proto;
	cur = eth + 1;

#pragma unroll
	for (int i = 0; i < VLAN_MAX_DEPTH; i++) {
		if (!is_vlan(proto))
			break;
		vh = cur;
		if ((void *)(vh + 1) > data_end)
			return XDP_DROP;
		/* The innermost tag decides. */
		vid = bpf_ntohs(vh->tci) & VLAN_VID_MASK;
		proto = vh->encap_proto;
		cur = vh + 1;
	}

	st = bpf_map_lookup_elem(&vlans, &vid);
	if (st) {
		__sync_fetch_and_add(&st->packets, 1);
		if (st->flags & 1)
			return XDP_DROP;
	}

	if (proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = cur;
	if ((void *)(ip + 1) > data_end)
		return XDP_DROP;
	src = ip->saddr;
	if (bpf_map_lookup_elem(&blocked_src, &src))
		return XDP_DROP;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
