/* To the kernel's verifier a bpf_loop callback's index is any 64-bit number (it is below 1 << 23
 * at run time), so a callback that returns 2 for a negative index is refused.
 * privileged: reject should have been in [0, 1]
 * unprivileged: reject should have been in [0, 1]
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static long signed_index(__s64 index, void *data)
{
	return index > -1 ? 0 : 2;
}

SEC("xdp")
int xdp_signed_index(struct xdp_md *ctx)
{
	bpf_loop(1, (void *)signed_index, NULL, 0);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
