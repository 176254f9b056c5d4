/* A bpf_loop whose count is known to be 0 never calls its callback, and the kernel does not
 * check it: here one that returns 2.
 * privileged: accept
 * unprivileged: accept
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static long two(__u32 index, void *data)
{
	return 2;
}

SEC("xdp")
int xdp_count_zero(struct xdp_md *ctx)
{
	bpf_loop(0, two, NULL, 0);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
