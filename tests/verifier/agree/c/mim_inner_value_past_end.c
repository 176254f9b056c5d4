/* A read of 8 bytes at offset 8 of an inner map's 8-byte value: the value size comes from the
 * inner map template.
 * inner-map: outer array key=4 value=8 entries=4
 * privileged: reject 8-byte read of the map `outer.inner` value
 * unprivileged: reject 8-byte read of the map `outer.inner` value
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
int past_inner_value(struct xdp_md *ctx)
{
	__u32 k = 0;
	void *inner = bpf_map_lookup_elem(&outer, &k);
	if (!inner)
		return XDP_PASS;
	__u64 *n = bpf_map_lookup_elem(inner, &k);
	if (!n)
		return XDP_PASS;
	return *(volatile __u64 *)(n + 1) & 3;
}

char LICENSE[] SEC("license") = "GPL";
