/* A katran-like load balancer, second variant: the VIP's entry in a hash map gives the base
 * and size of its backend ring (slot = hash % size, checked against the ring's end), the outer
 * IPv4 header is built on the stack, checksummed with bpf_csum_diff and copied in front of the
 * packet after bpf_xdp_adjust_head, and the packet leaves through a DEVMAP (bpf_redirect_map).
 * privileged: accept
 * unprivileged: accept
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_BACKENDS 512
#define LB_SOURCE_IP 0x0a000001 /* 10.0.0.1 */

struct vip_meta {
	__u32 ring_base;
	__u32 ring_size;
	__u32 tx_port; /* devmap slot of the egress interface */
	__u32 pad;
};

struct backend {
	__be32 addr;
	__u8 mac[ETH_ALEN];
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __be32);
	__type(value, struct vip_meta);
} vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct backend);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} tx_ports SEC(".maps");

SEC("xdp")
int xdp_lb_devmap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data, *new_eth;
	struct iphdr *ip, outer = {};
	struct udphdr *udp;
	struct vip_meta *vip;
	struct backend *be;
	__u32 hash, slot, tx_port;
	__u8 client_mac[ETH_ALEN];
	__be32 daddr;
	__s64 sum;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end)
		return XDP_DROP;

	daddr = ip->daddr;
	vip = bpf_map_lookup_elem(&vips, &daddr);
	if (!vip || !vip->ring_size)
		return XDP_PASS;
	hash = (ip->saddr ^ ((__u32)udp->source << 16 | udp->dest)) * 2654435761u;
	slot = vip->ring_base + hash % vip->ring_size;
	if (slot >= MAX_BACKENDS)
		return XDP_DROP;
	be = bpf_map_lookup_elem(&backends, &slot);
	if (!be || !be->addr)
		return XDP_DROP;
	tx_port = vip->tx_port;

	outer.version = 4;
	outer.ihl = 5;
	outer.ttl = 64;
	outer.protocol = IPPROTO_IPIP;
	outer.tot_len = bpf_htons(bpf_ntohs(ip->tot_len) + sizeof(struct iphdr));
	outer.saddr = bpf_htonl(LB_SOURCE_IP);
	outer.daddr = be->addr;
	sum = bpf_csum_diff(0, 0, (__be32 *)&outer, sizeof(outer), 0);
	sum = (sum & 0xffff) + (sum >> 16);
	outer.check = ~((sum & 0xffff) + (sum >> 16));
	__builtin_memcpy(client_mac, eth->h_dest, ETH_ALEN);

	if (bpf_xdp_adjust_head(ctx, 0 - (int)sizeof(struct iphdr)))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	new_eth = data;
	if ((void *)(new_eth + 1) + sizeof(outer) > data_end)
		return XDP_DROP;
	__builtin_memcpy(new_eth->h_source, client_mac, ETH_ALEN);
	__builtin_memcpy(new_eth->h_dest, be->mac, ETH_ALEN);
	new_eth->h_proto = bpf_htons(ETH_P_IP);
	__builtin_memcpy(new_eth + 1, &outer, sizeof(outer));
	return bpf_redirect_map(&tx_ports, tx_port, XDP_DROP);
}

char _license[] SEC("license") = "GPL";
