/* An inner array looked up with a constant key inside its template's max_entries: as for any
 * array, the kernel knows the value exists and needs no NULL check (the outer lookup still
 * does: a slot of an array of maps may be empty).
 * inner-map: outer array key=4 value=8 entries=4
 * privileged: accept
 * unprivileged: accept
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
int constant_key(struct xdp_md *ctx)
{
	__u32 zero = 0, three = 3;
	void *inner = bpf_map_lookup_elem(&outer, &zero);
	if (!inner)
		return XDP_PASS;
	__u64 *n = bpf_map_lookup_elem(inner, &three);
	/* No NULL check: clang keeps the load only because the kernel allows it. */
	asm volatile("r0 = *(u64 *)(%0 + 0)" :: "r"(n) : "r0");
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
