/*
 * tailcall.o — programs `xdp_tailcall` (entry), `tail0` and `tail1` (all SEC "xdp").
 *
 * HARNESS CONVENTION: before running `xdp_tailcall`, the harness loads all three programs from this
 * object and seeds the prog_array `jmp_table` with jmp_table[0] = tail0 and jmp_table[1] = tail1.
 * Every other slot (2..7) stays empty, so a tail call to it fails and execution falls through to the
 * next instruction, as the kernel does. The kernel's harness and duet's must seed the same way.
 *
 * Exercises: BPF_MAP_TYPE_PROG_ARRAY and bpf_tail_call (a successful call does not return; a
 * call to an empty slot returns and the caller continues), a chain of two tail calls
 * (xdp_tailcall -> tail0 -> tail1), a map shared by three programs.
 *
 * Flow and verdicts:
 *   xdp_tailcall: frames shorter than an Ethernet header: XDP_ABORTED. IPv4 -> tail call slot 0,
 *                 IPv6 -> slot 1, anything else -> slot 7 (empty: falls through, XDP_PASS).
 *   tail0 (IPv4): TCP -> tail call slot 1; UDP: XDP_DROP; ICMP: XDP_TX; other or truncated: XDP_PASS.
 *   tail1:        IPv4 TCP to port 8080: XDP_DROP; IPv4 TCP with a truncated header: XDP_ABORTED;
 *                 anything else (IPv6, other TCP): XDP_PASS.
 *
 * Maps: `jmp_table` (prog_array, 8 slots), `hits` (array: [0] entry runs, [1] tail0 runs,
 * [2] tail1 runs, [3] fall-throughs after a failed tail call, [4] fall-throughs in tail0).
 */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} jmp_table SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

SEC("xdp")
int xdp_tailcall(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	count_in(&hits, 0);
	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		bpf_tail_call(ctx, &jmp_table, 0);
	else if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		bpf_tail_call(ctx, &jmp_table, 1);
	else
		bpf_tail_call(ctx, &jmp_table, 7);
	/* Only reached when the slot was empty. */
	count_in(&hits, 3);
	return XDP_PASS;
}

SEC("xdp")
int tail0(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);

	count_in(&hits, 1);
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	switch (ip->protocol) {
	case IPPROTO_TCP:
		bpf_tail_call(ctx, &jmp_table, 1);
		count_in(&hits, 4);
		return XDP_ABORTED;
	case IPPROTO_UDP:
		return XDP_DROP;
	case IPPROTO_ICMP:
		return XDP_TX;
	default:
		return XDP_PASS;
	}
}

SEC("xdp")
int tail1(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct tcphdr *th;

	count_in(&hits, 2);
	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->ihl < 5)
		return XDP_ABORTED;
	th = (void *)ip + ip->ihl * 4;
	if ((void *)(th + 1) > data_end)
		return XDP_ABORTED;
	return th->dest == bpf_htons(8080) ? XDP_DROP : XDP_PASS;
}

DUET_LICENSE;
