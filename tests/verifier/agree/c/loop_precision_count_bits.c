/* A counter that only data decides (bits set in 64 packet bytes) and that is only stored: the
 * kernel keeps it imprecise, so the loop converges instead of forking at every byte.
 * privileged: accept
 * unprivileged: reject unprivileged loader
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } out SEC(".maps");
SEC("xdp")
int count_bits(struct xdp_md *ctx)
{
	__u8 *p = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 cnt = 0, k = 0;
	__u64 *v;
	if ((void *)(p + 64) > end)
		return XDP_PASS;
	for (int i = 0; i < 64; i++)
		if (p[i] & 1)
			cnt++;
	v = bpf_map_lookup_elem(&out, &k);
	if (v)
		*v = cnt;
	return XDP_PASS;
}
char _license[] SEC("license") = "GPL";
