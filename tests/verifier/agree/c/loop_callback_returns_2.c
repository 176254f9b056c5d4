/* A bpf_loop callback must return 0 (go on) or 1 (stop).
 * privileged: reject should have been in [0, 1]
 * unprivileged: reject should have been in [0, 1]
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static long two(__u32 index, void *data)
{
	return 2;
}

SEC("xdp")
int xdp_two(struct xdp_md *ctx)
{
	bpf_loop(4, two, NULL, 0);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
