/*
 * redirect.o — program `xdp_redirect` (SEC "xdp").
 *
 * Exercises: bpf_redirect (an ifindex from `.rodata`; the verdict is XDP_REDIRECT whatever the
 * ifindex, XDP_ABORTED when the flags are invalid) and bpf_redirect_map on a devmap. The harness
 * leaves `tx_ports` empty, so bpf_redirect_map finds no device and returns the fallback action in
 * the low bits of its flags argument: that keeps the result independent of the machine's devices.
 * In BPF_PROG_TEST_RUN nothing is transmitted: only the return value counts.
 *
 * Verdicts (IPv4 over untagged Ethernet, TCP/UDP without IPv4 options; everything else XDP_PASS):
 *   - TCP to port 80: bpf_redirect(redirect_ifindex, 0) = XDP_REDIRECT
 *   - TCP to port 443: bpf_redirect(redirect_ifindex, 1), invalid flags = XDP_ABORTED
 *   - UDP: bpf_redirect_map(&tx_ports, dport % 4, XDP_PASS) on an empty slot = XDP_PASS
 *   - ICMP: bpf_redirect_map(&tx_ports, 0, XDP_DROP) on an empty slot = XDP_DROP
 *
 * Maps: `tx_ports` (devmap, 4 slots, left empty), `verdicts` (array: packets per returned verdict).
 */
#include "common.h"

/* .rodata: the interface to redirect to (loopback; any number gives the same verdict). */
const volatile __u32 redirect_ifindex = 1;

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} tx_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

static __always_inline int decide(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *l4 = (void *)(ip + 1);

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5)
		return XDP_PASS;
	if (ip->protocol == IPPROTO_ICMP)
		return bpf_redirect_map(&tx_ports, 0, XDP_DROP);
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	/* The ports sit at the same offsets in TCP and UDP headers. */
	if ((void *)(l4 + 1) > data_end)
		return XDP_PASS;
	if (ip->protocol == IPPROTO_UDP)
		return bpf_redirect_map(&tx_ports, bpf_ntohs(l4->dest) % 4, XDP_PASS);
	if (l4->dest == bpf_htons(80))
		return bpf_redirect(redirect_ifindex, 0);
	if (l4->dest == bpf_htons(443))
		return bpf_redirect(redirect_ifindex, 1);
	return XDP_PASS;
}

SEC("xdp")
int xdp_redirect(struct xdp_md *ctx)
{
	int verdict = decide(ctx);

	count_in(&verdicts, (__u32)verdict);
	return verdict;
}

DUET_LICENSE;
