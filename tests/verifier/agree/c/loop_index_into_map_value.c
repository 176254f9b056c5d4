/* A bpf_loop callback writing byte (index & 15) of a map value, stopping after 8 calls.
 * privileged: accept
 * unprivileged: accept
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8[16]);
} bytes SEC(".maps");

struct loop_ctx {
	__u64 seen;
};

static long mark(__u32 index, void *data)
{
	struct loop_ctx *c = data;
	__u32 key = 0;
	__u8 *v = bpf_map_lookup_elem(&bytes, &key);

	if (!v)
		return 1;
	v[index & 15] = 1;
	c->seen++;
	return c->seen >= 8;
}

SEC("xdp")
int xdp_mark(struct xdp_md *ctx)
{
	struct loop_ctx c = { 0 };

	bpf_loop(100, mark, &c, 0);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
