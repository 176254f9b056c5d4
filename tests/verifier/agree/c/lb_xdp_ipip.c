/* A katran-like L4 load balancer: parses eth/IPv4/TCP|UDP, looks the VIP up in a hash map,
 * hashes the 5-tuple onto the VIP's ring of backends in an array, encapsulates the packet in
 * IPIP (bpf_xdp_adjust_head, a new outer IPv4 header with its checksum) and sends it back out.
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

#define MAX_VIPS 16
#define RING_SIZE 64
#define LB_SOURCE_IP 0x0a000001 /* 10.0.0.1 */

struct vip_key {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

struct vip_meta {
	__u32 flags;
	__u32 vip_num;
};

struct backend {
	__be32 addr;
	__u8 mac[ETH_ALEN];
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_VIPS);
	__type(key, struct vip_key);
	__type(value, struct vip_meta);
} vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_VIPS * RING_SIZE);
	__type(key, __u32);
	__type(value, struct backend);
} ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_VIPS);
	__type(key, __u32);
	__type(value, __u64);
} vip_packets SEC(".maps");

static __always_inline __u32 mix(__u32 h, __u32 v)
{
	h ^= v;
	h *= 0x9e3779b1;
	return h ^ (h >> 15);
}

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

SEC("xdp")
int xdp_lb_ipip(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data, *new_eth;
	struct iphdr *ip, *outer;
	struct vip_key key = {};
	struct vip_meta *meta;
	struct backend *be;
	__u16 sport, dport, inner_len;
	__u32 hash, idx, sum = 0;
	__u64 *pkts;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->ihl != 5)
		return XDP_PASS;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)(ip + 1);

		if ((void *)(tcp + 1) > data_end)
			return XDP_DROP;
		sport = tcp->source;
		dport = tcp->dest;
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = (void *)(ip + 1);

		if ((void *)(udp + 1) > data_end)
			return XDP_DROP;
		sport = udp->source;
		dport = udp->dest;
	} else {
		return XDP_PASS;
	}

	key.addr = ip->daddr;
	key.port = dport;
	key.proto = ip->protocol;
	meta = bpf_map_lookup_elem(&vips, &key);
	if (!meta)
		return XDP_PASS;
	if (meta->vip_num >= MAX_VIPS)
		return XDP_DROP;
	pkts = bpf_map_lookup_elem(&vip_packets, &meta->vip_num);
	if (pkts)
		*pkts += 1;

	hash = mix(mix(mix(0, ip->saddr), ip->daddr), ((__u32)sport << 16) | dport);
	hash = mix(hash, ip->protocol);
	idx = meta->vip_num * RING_SIZE + (hash & (RING_SIZE - 1));
	be = bpf_map_lookup_elem(&ring, &idx);
	if (!be || !be->addr)
		return XDP_DROP;
	inner_len = bpf_ntohs(ip->tot_len);

	if (bpf_xdp_adjust_head(ctx, 0 - (int)sizeof(struct iphdr)))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	new_eth = data;
	eth = data + sizeof(struct iphdr);
	outer = (void *)(new_eth + 1);
	if ((void *)(outer + 1) > data_end)
		return XDP_DROP;

	__builtin_memcpy(new_eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(new_eth->h_dest, be->mac, ETH_ALEN);
	new_eth->h_proto = bpf_htons(ETH_P_IP);

	outer->version = 4;
	outer->ihl = 5;
	outer->tos = 0;
	outer->tot_len = bpf_htons(inner_len + sizeof(struct iphdr));
	outer->id = 0;
	outer->frag_off = 0;
	outer->ttl = 64;
	outer->protocol = IPPROTO_IPIP;
	outer->check = 0;
	outer->saddr = bpf_htonl(LB_SOURCE_IP);
	outer->daddr = be->addr;

#pragma unroll
	for (int i = 0; i < (int)sizeof(struct iphdr) / 2; i++)
		sum += ((__u16 *)outer)[i];
	outer->check = csum_fold(sum);
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
