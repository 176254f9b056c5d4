/* A transparent proxy's TC ingress program in the style of the kernel's test_sk_assign: for
 * TCP packets to the proxied port it looks the connection's own socket up
 * (bpf_skc_lookup_tcp); an established connection keeps its socket, a new one is steered to
 * the proxy's listener, taken from a sockmap, with bpf_sk_assign. Every socket found is
 * released on every path.
 * privileged: accept
 * unprivileged: accept
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define PROXY_PORT 4321
#define TCP_LISTEN 10

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} listener SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 what)
{
	__u64 *n = bpf_map_lookup_elem(&stats, &what);

	if (n)
		*n += 1;
}

SEC("tc")
int tproxy(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct bpf_sock_tuple *tuple;
	struct ethhdr *eth = data;
	struct bpf_sock *sk;
	struct iphdr *ip;
	struct tcphdr *tcp;
	__u32 zero = 0;
	long err;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->ihl != 5 || ip->protocol != IPPROTO_TCP)
		return TC_ACT_OK;
	tcp = (void *)(ip + 1);
	if ((void *)(tcp + 1) > data_end)
		return TC_ACT_OK;
	/* saddr, daddr, source, dest: the packet's own bytes are the tuple. */
	tuple = (struct bpf_sock_tuple *)&ip->saddr;
	if ((void *)tuple + sizeof(tuple->ipv4) > data_end)
		return TC_ACT_OK;
	if (tcp->dest != bpf_htons(PROXY_PORT))
		return TC_ACT_OK;

	sk = bpf_skc_lookup_tcp(skb, tuple, sizeof(tuple->ipv4), BPF_F_CURRENT_NETNS, 0);
	if (sk) {
		if (sk->state != TCP_LISTEN) {
			err = bpf_sk_assign(skb, sk, 0);
			bpf_sk_release(sk);
			count(err ? 1 : 0);
			return err ? TC_ACT_SHOT : TC_ACT_OK;
		}
		bpf_sk_release(sk);
	}

	sk = bpf_map_lookup_elem(&listener, &zero);
	if (!sk) {
		count(2);
		return TC_ACT_SHOT;
	}
	if (sk->state != TCP_LISTEN) {
		bpf_sk_release(sk);
		return TC_ACT_SHOT;
	}
	err = bpf_sk_assign(skb, sk, 0);
	bpf_sk_release(sk);
	count(err ? 1 : 3);
	return err ? TC_ACT_SHOT : TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
