/* A switch in a loop: a four-state tokenizer over 32 packet bytes; the state is precise (it picks
 * the map slot), the word and digit counts are not.
 * privileged: accept
 * unprivileged: reject unprivileged loader
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4); __type(key, __u32); __type(value, __u64); } out SEC(".maps");
SEC("xdp")
int fsm(struct xdp_md *ctx)
{
	__u8 *p = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 state = 0, words = 0, digits = 0;
	__u64 *v;
	if ((void *)(p + 32) > end)
		return XDP_PASS;
	for (int i = 0; i < 32; i++) {
		__u8 c = p[i];
		switch (state) {
		case 0:
			if (c >= '0' && c <= '9') { state = 1; digits++; }
			else if (c != ' ') { state = 2; words++; }
			break;
		case 1:
			if (c == ' ') state = 0;
			else if (c < '0' || c > '9') state = 3;
			break;
		case 2:
			if (c == ' ') state = 0;
			break;
		default:
			if (c == ' ') state = 0;
			break;
		}
	}
	__u32 k = state & 3;
	v = bpf_map_lookup_elem(&out, &k);
	if (v)
		*v = words + digits;
	return XDP_PASS;
}
char _license[] SEC("license") = "GPL";
