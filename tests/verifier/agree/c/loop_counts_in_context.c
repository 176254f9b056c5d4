/* bpf_loop with a callback that counts in a context on the caller's stack.
 * privileged: accept
 * unprivileged: accept
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct loop_ctx {
	__u64 count;
};

static long count_one(__u32 index, void *data)
{
	struct loop_ctx *c = data;

	c->count++;
	return 0;
}

SEC("xdp")
int xdp_loop(struct xdp_md *ctx)
{
	struct loop_ctx c = { 0 };

	bpf_loop(10, count_one, &c, 0);
	return c.count == 10 ? XDP_PASS : XDP_DROP;
}

char _license[] SEC("license") = "GPL";
