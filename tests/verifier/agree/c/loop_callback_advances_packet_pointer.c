/* A bpf_loop callback that walks the packet through a pointer it keeps in its context, one byte
 * per call: the pointer's offset grows with every call, so no two calls' states are alike, and
 * the kernel stops exploring the callback after as many calls as the count (64) allows
 * (`callback_depth`).
 * privileged: accept
 * unprivileged: accept
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct walk {
	__u8 *pos;
	__u8 *end;
	__u64 sum;
};

static long step(__u32 index, void *data)
{
	struct walk *w = data;
	__u8 *p = w->pos;

	if (p + 1 > w->end)
		return 1;
	w->sum += *p;
	w->pos = p + 1;
	return 0;
}

SEC("xdp")
int xdp_walk(struct xdp_md *ctx)
{
	struct walk w = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
		.sum = 0,
	};
	long made = bpf_loop(64, step, &w, 0);

	return (made + w.sum) & 1 ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
