/* The transparent proxy's mistake: when bpf_sk_assign fails the program drops the packet
 * and returns before releasing the listener it took from the sockmap.
 * privileged: reject unreleased reference
 * unprivileged: reject unreleased reference
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} listener SEC(".maps");

SEC("tc")
int tproxy_leak(struct __sk_buff *skb)
{
	struct bpf_sock *sk;
	__u32 zero = 0;

	sk = bpf_map_lookup_elem(&listener, &zero);
	if (!sk)
		return TC_ACT_SHOT;
	if (bpf_sk_assign(skb, sk, 0))
		return TC_ACT_SHOT;
	bpf_sk_release(sk);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
