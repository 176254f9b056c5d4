/* A tutorial-style bpf_loop: an XDP program records each packet's length in a 64-slot ring of
 * an array map, then a bpf_loop callback sums the ring (one map lookup per slot) and the
 * program drops the packet when the windowed average is above a limit kept in another map.
 * Without CAP_PERFMON the kernel refuses `data_end - data` (pointer minus pointer).
 * privileged: accept
 * unprivileged: reject pointer -= pointer is prohibited
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define WINDOW 64

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WINDOW);
	__type(key, __u32);
	__type(value, __u64);
} lengths SEC(".maps");

struct config {
	__u64 max_avg;
	__u64 next; /* next slot to write */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} cfg SEC(".maps");

struct sum_ctx {
	__u64 sum;
	__u32 filled;
};

static long add_slot(__u32 index, void *data)
{
	struct sum_ctx *s = data;
	__u64 *len = bpf_map_lookup_elem(&lengths, &index);

	if (!len)
		return 1;
	if (*len) {
		s->sum += *len;
		s->filled++;
	}
	return 0;
}

SEC("xdp")
int xdp_window(struct xdp_md *ctx)
{
	struct sum_ctx s = { 0 };
	struct config *c;
	__u32 zero = 0, slot;
	__u64 *len;

	c = bpf_map_lookup_elem(&cfg, &zero);
	if (!c)
		return XDP_PASS;
	slot = c->next % WINDOW;
	c->next++;
	len = bpf_map_lookup_elem(&lengths, &slot);
	if (len)
		*len = ctx->data_end - ctx->data;

	bpf_loop(WINDOW, add_slot, &s, 0);
	if (s.filled && c->max_avg && s.sum / s.filled > c->max_avg)
		return XDP_DROP;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
