/* bpf_loop inside a bpf_loop callback, summing into the outer caller's context.
 * privileged: accept
 * unprivileged: accept
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct loop_ctx {
	__u64 sum;
};

static long inner(__u32 index, void *data)
{
	struct loop_ctx *c = data;

	c->sum += index;
	return 0;
}

static long outer(__u32 index, void *data)
{
	bpf_loop(3, inner, data, 0);
	return 0;
}

SEC("xdp")
int xdp_nested(struct xdp_md *ctx)
{
	struct loop_ctx c = { 0 };

	bpf_loop(5, outer, &c, 0);
	return c.sum > 100 ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
