/*
 * parse.o — program `xdp_parse` (SEC "xdp").
 *
 * Exercises: packet parsing of Ethernet, up to two VLAN tags, IPv4 with options (IHL > 5), IPv6
 * with up to four extension headers, TCP, UDP, ICMP and ICMPv6, each with its own bounds check;
 * bpf-to-bpf calls (noinline static functions with four and five arguments, packet pointers and a
 * stack pointer among them); packet writes (MAC swap before XDP_TX); array maps.
 *
 * Verdicts:
 *   - frame too short for a header it announces, IPv4 IHL < 5, bad IP version: XDP_ABORTED
 *   - IPv4 non-first fragment, TTL/hop limit <= 1: XDP_DROP
 *   - TCP to port 23 or 8080, UDP to any port but 53: XDP_DROP
 *   - ICMP / ICMPv6 echo request: XDP_TX, with the MAC addresses swapped
 *   - everything else (ARP, TCP to 22/80/443, UDP to 53, other ICMP, other L4): XDP_PASS
 *
 * Maps: `kind_count` (array, packets per parse outcome), `verdict_count` (array, packets per verdict).
 */
#include "common.h"

/* What parsing found; the index into `kind_count`. */
enum kind {
	KIND_NON_IP = 0,
	KIND_MALFORMED = 1,
	KIND_FRAGMENT = 2,
	KIND_TCP = 3,
	KIND_UDP = 4,
	KIND_ICMP = 5,
	KIND_OTHER_L4 = 6,
	KIND_MAX = 7,
};

/* The fields the verdict depends on. */
struct flow {
	__u16 dport;
	__u8 l4proto;
	__u8 ttl;
	__u8 icmp_type;
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KIND_MAX);
	__type(key, __u32);
	__type(value, __u64);
} kind_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} verdict_count SEC(".maps");

/*
 * Parses the transport header at `l4off` and fills `f`. A subprogram with packet pointers and a
 * stack pointer as arguments: the verifier checks it with the caller's register types.
 */
static __attribute__((noinline)) int parse_l4(void *data, void *data_end, __u64 l4off, __u8 proto,
					      struct flow *f)
{
	void *l4;

	/* The caller's bound is re-stated here so the offset is known to be small. */
	if (l4off > 4096)
		return KIND_MALFORMED;
	l4 = data + l4off;
	f->l4proto = proto;
	switch (proto) {
	case IPPROTO_TCP: {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end)
			return KIND_MALFORMED;
		f->dport = bpf_ntohs(th->dest);
		return KIND_TCP;
	}
	case IPPROTO_UDP: {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end)
			return KIND_MALFORMED;
		f->dport = bpf_ntohs(uh->dest);
		return KIND_UDP;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		/* Type and code are the first two bytes of both ICMP versions. */
		__u8 *icmp = l4;

		if ((void *)(icmp + 2) > data_end)
			return KIND_MALFORMED;
		f->icmp_type = icmp[0];
		return KIND_ICMP;
	}
	default:
		return KIND_OTHER_L4;
	}
}

/* Walks the Ethernet, VLAN and IP headers, then hands over to `parse_l4`. */
static __attribute__((noinline)) int parse_frame(void *data, void *data_end, struct flow *f)
{
	struct ethhdr *eth = data;
	__be16 proto;
	__u64 off = sizeof(*eth);
	int i;

	if ((void *)(eth + 1) > data_end)
		return KIND_MALFORMED;
	proto = eth->h_proto;

	/* At most two tags (QinQ); a constant bound the compiler may unroll. */
	for (i = 0; i < 2; i++) {
		struct vlan_hdr *vh = data + off;

		if (!is_vlan(proto))
			break;
		if ((void *)(vh + 1) > data_end)
			return KIND_MALFORMED;
		proto = vh->encap_proto;
		off += sizeof(*vh);
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + off;
		__u64 hlen;

		if ((void *)(ip + 1) > data_end)
			return KIND_MALFORMED;
		if (ip->version != 4 || ip->ihl < 5)
			return KIND_MALFORMED;
		hlen = ip->ihl * 4;
		if (data + off + hlen > data_end)
			return KIND_MALFORMED;
		f->ttl = ip->ttl;
		if (ip->frag_off & bpf_htons(IP_OFFSET_MASK))
			return KIND_FRAGMENT;
		return parse_l4(data, data_end, off + hlen, ip->protocol, f);
	}

	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + off;
		__u8 next;

		if ((void *)(ip6 + 1) > data_end)
			return KIND_MALFORMED;
		if (ip6->version != 6)
			return KIND_MALFORMED;
		f->ttl = ip6->hop_limit;
		next = ip6->nexthdr;
		off += sizeof(*ip6);
		/* Hop-by-hop, routing and destination options headers: length in 8-byte units. */
		for (i = 0; i < 4; i++) {
			__u8 *ext = data + off;

			if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_DSTOPTS)
				break;
			if ((void *)(ext + 2) > data_end)
				return KIND_MALFORMED;
			next = ext[0];
			off += (ext[1] + 1) * 8;
		}
		if (next == IPPROTO_FRAGMENT)
			return KIND_FRAGMENT;
		return parse_l4(data, data_end, off, next, f);
	}

	return KIND_NON_IP;
}

/* Maps a parse outcome to a verdict; five scalar arguments, the most a BPF call can take. */
static __attribute__((noinline)) __u32 decide(int kind, __u8 proto, __u16 dport, __u8 icmp_type, __u8 ttl)
{
	switch (kind) {
	case KIND_NON_IP:
		return XDP_PASS;
	case KIND_MALFORMED:
		return XDP_ABORTED;
	case KIND_FRAGMENT:
		return XDP_DROP;
	}
	if (ttl <= 1)
		return XDP_DROP;
	if (kind == KIND_TCP)
		return (dport == 23 || dport == 8080) ? XDP_DROP : XDP_PASS;
	if (kind == KIND_UDP)
		return dport == 53 ? XDP_PASS : XDP_DROP;
	if (kind == KIND_ICMP) {
		if ((proto == IPPROTO_ICMP && icmp_type == ICMP_ECHO_REQUEST) ||
		    (proto == IPPROTO_ICMPV6 && icmp_type == ICMPV6_ECHO_REQUEST))
			return XDP_TX;
	}
	return XDP_PASS;
}

SEC("xdp")
int xdp_parse(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct flow f = {};
	int kind;
	__u32 verdict;

	kind = parse_frame(data, data_end, &f);
	verdict = decide(kind, f.l4proto, f.dport, f.icmp_type, f.ttl);

	if (verdict == XDP_TX) {
		/* Reflect the frame: swap destination and source MAC addresses. */
		struct ethhdr *eth = data;
		__u8 tmp[ETH_ALEN];

		if ((void *)(eth + 1) > data_end)
			return XDP_ABORTED;
		__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
		__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
		__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
	}

	count_in(&kind_count, kind);
	count_in(&verdict_count, verdict);
	return verdict;
}

DUET_LICENSE;
