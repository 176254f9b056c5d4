/*
 * Reads the IPv4 protocol after checking only the Ethernet header against data_end.
 * expect: pkt_bound_too_small.c:24
 * expect: check `data + 24 > data_end` first
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_short_check(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if (data + sizeof(*eth) > data_end)
		return XDP_PASS;
	if (eth->h_proto != __builtin_bswap16(ETH_P_IP))
		return XDP_PASS;
	/* The IPv4 header was never checked against data_end. */
	if (ip->protocol == 17 /* UDP */)
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
