/* A bpf_loop callback indexing a 16-byte map value with the unchecked index.
 * privileged: reject map `bytes` value
 * unprivileged: reject map `bytes` value
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8[16]);
} bytes SEC(".maps");

static long mark(__u32 index, void *data)
{
	__u32 key = 0;
	__u8 *v = bpf_map_lookup_elem(&bytes, &key);

	if (!v)
		return 1;
	v[index] = 1;
	return 0;
}

SEC("xdp")
int xdp_mark(struct xdp_md *ctx)
{
	bpf_loop(100, mark, NULL, 0);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
