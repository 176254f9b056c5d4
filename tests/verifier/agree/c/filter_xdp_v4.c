/* An xdp-filter-like packet filter, IPv4 only: drops sources listed in a hash map and
 * destination ports flagged in a 65536-entry array, counting verdicts in a per-CPU array.
 * Packets with IP options are passed unfiltered, so every header is at a constant offset.
 * privileged: accept
 * unprivileged: accept
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define PORT_DROP_TCP 1
#define PORT_DROP_UDP 2

enum { CNT_PASS, CNT_DROP_SRC, CNT_DROP_PORT, CNT_MALFORMED, CNT_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} blocked_src SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} port_flags SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline int count(__u32 which, int action)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);

	if (c)
		*c += 1;
	return action;
}

SEC("xdp")
int xdp_filter_v4(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u64 *hits;
	__u8 *flags;
	__u32 port;
	__u32 src;

	if ((void *)(eth + 1) > data_end)
		return count(CNT_MALFORMED, XDP_DROP);
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return count(CNT_PASS, XDP_PASS);
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return count(CNT_MALFORMED, XDP_DROP);
	if (ip->ihl != 5)
		return count(CNT_PASS, XDP_PASS);

	src = ip->saddr;
	hits = bpf_map_lookup_elem(&blocked_src, &src);
	if (hits) {
		__sync_fetch_and_add(hits, 1);
		return count(CNT_DROP_SRC, XDP_DROP);
	}

	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)(ip + 1);

		if ((void *)(tcp + 1) > data_end)
			return count(CNT_MALFORMED, XDP_DROP);
		port = bpf_ntohs(tcp->dest);
		flags = bpf_map_lookup_elem(&port_flags, &port);
		if (flags && (*flags & PORT_DROP_TCP))
			return count(CNT_DROP_PORT, XDP_DROP);
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = (void *)(ip + 1);

		if ((void *)(udp + 1) > data_end)
			return count(CNT_MALFORMED, XDP_DROP);
		port = bpf_ntohs(udp->dest);
		flags = bpf_map_lookup_elem(&port_flags, &port);
		if (flags && (*flags & PORT_DROP_UDP))
			return count(CNT_DROP_PORT, XDP_DROP);
	}
	return count(CNT_PASS, XDP_PASS);
}

char _license[] SEC("license") = "GPL";
