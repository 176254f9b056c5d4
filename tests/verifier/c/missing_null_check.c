/*
 * Increments a per-protocol counter without checking the lookup result for NULL.
 * expect: missing_null_check.c:29
 * expect: which may be NULL
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 key;
	__u64 *count;

	if (data + 1 > data_end)
		return XDP_PASS;
	key = *(__u8 *)data;
	count = bpf_map_lookup_elem(&counts, &key);
	/* The lookup returns NULL for keys not in the map. */
	*count += 1;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
