/* A program may look maps of maps up, never change them: bpf_map_update_elem on the outer map.
 * inner-map: outer array key=4 value=8 entries=4
 * privileged: reject cannot be used with map `outer`
 * unprivileged: reject cannot be used with map `outer`
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
int update_outer(struct xdp_md *ctx)
{
	__u32 k = 0, v = 0;
	bpf_map_update_elem(&outer, &k, &v, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
