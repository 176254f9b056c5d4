/* Counts kept in a stack array written through a computed pointer, one of them then an index:
 * the slots are precise, and the count unbounded.
 * privileged: reject no lower bound
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
SEC("xdp") int f(struct xdp_md *ctx) {
	__u8 *p = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u64 slots[4] = {};
	__u32 k = 0;
	if ((void *)(p + 64) > end)
		return XDP_PASS;
	for (int i = 0; i < 64; i++) {
		__u64 *s = &slots[p[i] & 3];
		if (p[i] & 4)
			*s += 1;
	}
	char *v = bpf_map_lookup_elem(&vals, &k);
	if (!v) return XDP_PASS;
	return v[slots[1]];
}
