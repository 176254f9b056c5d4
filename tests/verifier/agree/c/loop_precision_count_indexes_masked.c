/* The data-dependent counter indexes a 32-byte map value after masking it to 0..=31.
 * privileged: accept
 * unprivileged: reject unprivileged loader
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, char[32]); } vals SEC(".maps");
char _license[] SEC("license") = "GPL";
#define PROLOGUE \
	__u8 *p = (void *)(long)ctx->data; \
	void *end = (void *)(long)ctx->data_end; \
	__u32 cnt = 0, k = 0; \
	if ((void *)(p + 64) > end) \
		return XDP_PASS; \
	for (int i = 0; i < 64; i++) \
		if (p[i] & 1) \
			cnt++;
SEC("xdp") int f(struct xdp_md *ctx) { PROLOGUE
	char *v = bpf_map_lookup_elem(&vals, &k);
	if (!v) return XDP_PASS;
	return v[cnt & 31];
}
