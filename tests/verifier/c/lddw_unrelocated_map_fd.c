/*
 * Looks up a map through a raw `lddw` map-fd pseudo load written in inline assembly, with no
 * symbol and so no relocation: the bytecode names file descriptor 0, not the object's map.
 * The kernel refuses it ("fd 0 is not pointing to valid bpf_map"); duet once bound it silently
 * to the object's first map.
 * expect: lddw_unrelocated_map_fd.c:
 * expect: names map fd 0 directly, with no relocation
 * expect: fd 0 is not pointing to valid bpf_map
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

SEC("xdp")
int xdp_raw_map_fd(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *count;
	void *map;

	/* lddw r1, map_fd 0 (code 0x18, dst r1, src 1, imm 0), then the second slot. */
	asm volatile(".quad 0x0000000000001118\n\t.quad 0\n\t%0 = r1" : "=r"(map) : : "r1");
	count = bpf_map_lookup_elem(map, &key);
	if (count)
		*count += 1;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
