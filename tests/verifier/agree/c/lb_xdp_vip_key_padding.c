/* A load balancer's VIP lookup with a classic bug: the key struct on the stack has a padding
 * byte that is never written. With CAP_PERFMON the kernel lets the helper read it; without,
 * it refuses the uninitialised stack read.
 * privileged: accept
 * unprivileged: reject was never written
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct vip_key {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 pad; /* not written below */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct vip_key);
	__type(value, __u32);
} vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} vip_packets SEC(".maps");

SEC("xdp")
int xdp_vip_lookup(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct tcphdr *tcp;
	struct vip_key key;
	__u32 *vip_num;
	__u64 *n;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->ihl != 5 || ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	tcp = (void *)(ip + 1);
	if ((void *)(tcp + 1) > data_end)
		return XDP_DROP;

	key.addr = ip->daddr;
	key.port = tcp->dest;
	key.proto = ip->protocol;
	vip_num = bpf_map_lookup_elem(&vips, &key);
	if (!vip_num)
		return XDP_PASS;
	n = bpf_map_lookup_elem(&vip_packets, vip_num);
	if (n)
		*n += 1;
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
