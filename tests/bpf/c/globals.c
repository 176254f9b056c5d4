/*
 * globals.o — program `xdp_globals` (SEC "xdp").
 *
 * Exercises: global data in all three sections, which loaders turn into single-element array maps
 * referenced through `lddw` map-value relocations:
 *   - `.rodata`: `const volatile` configuration the program reads (the loader freezes the map, and
 *     the kernel's verifier may treat the values as constants);
 *   - `.data`: initialised variables the program reads and writes (a packet budget that runs out);
 *   - `.bss`: zero-initialised counters.
 * Nobody rewrites the configuration before loading, so the compiled-in defaults apply.
 *
 * Verdicts (untagged Ethernet; frames shorter than an Ethernet header are XDP_ABORTED):
 *   - once `budget` (.data, starts at 32) IPv4 packets have passed the budget check: XDP_DROP
 *   - TCP or UDP to `blocked_port` (.rodata, 8080): `blocked_verdict` (.rodata, XDP_DROP)
 *   - source in `blocked_net`/24 (.rodata, 192.168.2.0): XDP_DROP
 *   - IPv4 TTL below `min_ttl` (.rodata, 2): XDP_TX
 *   - everything else: XDP_PASS
 */
#include "common.h"

/* .rodata: configuration. */
const volatile __u16 blocked_port = 8080;
const volatile __u32 blocked_verdict = XDP_DROP;
const volatile __u8 blocked_net[4] = { 192, 168, 2, 0 };
const volatile __u8 min_ttl = 2;

/* .data: initialised state. */
__u64 budget = 32;
__u32 generation = 0x5eed;
__u8 last_mac[ETH_ALEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

/* .bss: counters. */
__u64 frames;
__u64 bytes;
__u64 ipv4_frames;
__u64 port_hits[4];
__u8 last_ttl;

SEC("xdp")
int xdp_globals(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u16 dport = 0;

	frames++;
	bytes += data_end - data;
	generation = generation * 31 + 7;

	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(last_mac, eth->h_source, ETH_ALEN);
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	ipv4_frames++;
	last_ttl = ip->ttl;

	if (budget == 0)
		return XDP_DROP;
	budget--;

	if ((ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) && ip->ihl == 5) {
		struct udphdr *uh = (void *)(ip + 1);

		if ((void *)(uh + 1) <= data_end)
			dport = bpf_ntohs(uh->dest);
	}
	switch (dport) {
	case 22:
		port_hits[0]++;
		break;
	case 53:
		port_hits[1]++;
		break;
	case 80:
		port_hits[2]++;
		break;
	case 443:
		port_hits[3]++;
		break;
	}
	if (dport != 0 && dport == blocked_port)
		return blocked_verdict;

	{
		__u8 *src = (__u8 *)&ip->saddr;

		if (src[0] == blocked_net[0] && src[1] == blocked_net[1] && src[2] == blocked_net[2])
			return XDP_DROP;
	}
	if (ip->ttl < min_ttl)
		return XDP_TX;
	return XDP_PASS;
}

DUET_LICENSE;
