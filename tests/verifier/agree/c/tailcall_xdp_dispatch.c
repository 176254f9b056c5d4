/* A dispatcher in the style of tail-call pipelines: classifies the packet by EtherType and
 * L4 protocol, stores the verdict in the packet's metadata area (bpf_xdp_adjust_meta), and
 * tail-calls the stage for that class through a PROG_ARRAY; an empty slot falls through.
 * privileged: accept
 * unprivileged: accept
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

enum stage { STAGE_OTHER, STAGE_TCP4, STAGE_UDP4, STAGE_IPV6, STAGE_ARP, STAGE_MAX };

struct meta {
	__u32 stage;
	__u32 l3_off;
};

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, STAGE_MAX);
	__type(key, __u32);
	__type(value, __u32);
} stages SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAGE_MAX);
	__type(key, __u32);
	__type(value, __u64);
} missed SEC(".maps");

static __always_inline __u32 classify(void *data, void *data_end)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return STAGE_OTHER;
	if (eth->h_proto == bpf_htons(ETH_P_ARP))
		return STAGE_ARP;
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return STAGE_IPV6;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			return STAGE_OTHER;
		if (ip->protocol == IPPROTO_TCP)
			return STAGE_TCP4;
		if (ip->protocol == IPPROTO_UDP)
			return STAGE_UDP4;
	}
	return STAGE_OTHER;
}

SEC("xdp")
int xdp_dispatch(struct xdp_md *ctx)
{
	__u32 stage = classify((void *)(long)ctx->data, (void *)(long)ctx->data_end);
	struct meta *m;
	__u64 *n;

	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(*m)) == 0) {
		void *data = (void *)(long)ctx->data;

		m = (void *)(long)ctx->data_meta;
		if ((void *)(m + 1) <= data) {
			m->stage = stage;
			m->l3_off = sizeof(struct ethhdr);
		}
	}
	bpf_tail_call(ctx, &stages, stage);

	/* Only reached when the slot is empty. */
	n = bpf_map_lookup_elem(&missed, &stage);
	if (n)
		*n += 1;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
