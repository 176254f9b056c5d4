/* An inner array of 4 looked up with the constant key 4 and used without a NULL check: the
 * key is past the template's max_entries, so the value may be NULL.
 * inner-map: outer array key=4 value=8 entries=4
 * privileged: reject may be NULL
 * unprivileged: reject may be NULL
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
};

struct inner first SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = { .values = { [0] = &first } };

SEC("xdp")
int key_out_of_range(struct xdp_md *ctx)
{
	__u32 zero = 0, four = 4;
	void *inner = bpf_map_lookup_elem(&outer, &zero);
	if (!inner)
		return XDP_PASS;
	__u64 *n = bpf_map_lookup_elem(inner, &four);
	asm volatile("r0 = *(u64 *)(%0 + 0)" :: "r"(n) : "r0");
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
