/* The outer lookup's result passed as a map before its NULL check: the kernel refuses a
 * map_value_or_null where a map is expected.
 * inner-map: outer array key=4 value=8 entries=4
 * privileged: reject expects a map handle in R1
 * unprivileged: reject expects a map handle in R1
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps");

SEC("xdp")
int unchecked_inner(struct xdp_md *ctx)
{
	__u32 k = 0;
	void *inner = bpf_map_lookup_elem(&outer, &k);
	__u64 *n = bpf_map_lookup_elem(inner, &k);
	if (!n)
		return XDP_PASS;
	return *n & 3;
}

char LICENSE[] SEC("license") = "GPL";
