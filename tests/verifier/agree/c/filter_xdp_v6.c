/* An xdp-filter-like packet filter for IPv4 and IPv6: sources blocked in one hash map per
 * family, destination ports flagged per protocol in an array, per-CPU verdict counters.
 * IPv6 extension headers and IPv4 options are not parsed: such packets pass.
 * privileged: accept
 * unprivileged: accept
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define PORT_DROP_TCP 1
#define PORT_DROP_UDP 2

enum { CNT_PASS, CNT_DROP_V4, CNT_DROP_V6, CNT_DROP_PORT, CNT_MALFORMED, CNT_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} blocked_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct in6_addr);
	__type(value, __u64);
} blocked_v6 SEC(".maps");

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

/* Looks the destination port of the L4 header at l4 up; 1 if it is to be dropped. */
static __always_inline int port_blocked(void *l4, void *data_end, __u8 proto)
{
	__u32 port;
	__u8 *flags;
	__u8 want;

	if (proto == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;

		if ((void *)(tcp + 1) > data_end)
			return -1;
		port = bpf_ntohs(tcp->dest);
		want = PORT_DROP_TCP;
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > data_end)
			return -1;
		port = bpf_ntohs(udp->dest);
		want = PORT_DROP_UDP;
	} else {
		return 0;
	}
	flags = bpf_map_lookup_elem(&port_flags, &port);
	return flags && (*flags & want);
}

SEC("xdp")
int xdp_filter_v6(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u64 *hits;
	int blocked;

	if ((void *)(eth + 1) > data_end)
		return count(CNT_MALFORMED, XDP_DROP);

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		__u32 src;

		if ((void *)(ip + 1) > data_end)
			return count(CNT_MALFORMED, XDP_DROP);
		src = ip->saddr;
		hits = bpf_map_lookup_elem(&blocked_v4, &src);
		if (hits) {
			__sync_fetch_and_add(hits, 1);
			return count(CNT_DROP_V4, XDP_DROP);
		}
		if (ip->ihl != 5)
			return count(CNT_PASS, XDP_PASS);
		blocked = port_blocked(ip + 1, data_end, ip->protocol);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		struct in6_addr src;

		if ((void *)(ip6 + 1) > data_end)
			return count(CNT_MALFORMED, XDP_DROP);
		__builtin_memcpy(&src, &ip6->saddr, sizeof(src));
		hits = bpf_map_lookup_elem(&blocked_v6, &src);
		if (hits) {
			__sync_fetch_and_add(hits, 1);
			return count(CNT_DROP_V6, XDP_DROP);
		}
		blocked = port_blocked(ip6 + 1, data_end, ip6->nexthdr);
	} else {
		return count(CNT_PASS, XDP_PASS);
	}
	if (blocked < 0)
		return count(CNT_MALFORMED, XDP_DROP);
	if (blocked)
		return count(CNT_DROP_PORT, XDP_DROP);
	return count(CNT_PASS, XDP_PASS);
}

char _license[] SEC("license") = "GPL";
