/* A bpf_loop callback in a TC classifier that looks up a socket for each of four ports of a
 * range (the callback's context carries the skb and the tuple) and releases every socket it
 * finds before returning: references a callback takes must not outlive it.
 * privileged: accept
 * unprivileged: accept
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct scan {
	struct __sk_buff *skb;
	struct bpf_sock_tuple tuple;
	__u32 found;
};

static long probe_port(__u32 i, void *data)
{
	struct scan *s = data;
	struct bpf_sock *sk;

	s->tuple.ipv4.dport = bpf_htons(8000 + i);
	sk = bpf_sk_lookup_tcp(s->skb, &s->tuple, sizeof(s->tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	s->found += sk->state == 10;
	bpf_sk_release(sk);
	return 0;
}

SEC("classifier")
int scan_ports(struct __sk_buff *skb)
{
	struct scan s = {};

	s.skb = skb;
	s.tuple.ipv4.daddr = bpf_htonl(0x7f000001);
	bpf_loop(4, probe_port, &s, 0);
	return s.found ? TC_ACT_OK : TC_ACT_SHOT;
}

char _license[] SEC("license") = "GPL";
