/* Several bpf_loop calls one after the other, whose callbacks change numbers in their contexts:
 * what follows each call is reached after any number of calls, with different numbers. Explored
 * in the order each callback call leaves them, these paths multiplied from loop to loop (duet
 * refused the program as too complex; the kernel takes it in about 1,500 instructions).
 * privileged: accept
 * unprivileged: accept
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct acc {
	__u64 sum;
	__u32 stop_at;
};

static long add(__u32 index, void *data)
{
	struct acc *a = data;

	a->sum += (__u64)index * 3;
	return index >= a->stop_at ? 1 : 0;
}

static long mix(__u32 index, void *data)
{
	__u64 *x = data;

	*x = (*x << 5) ^ (*x >> 3) ^ index;
	return 0;
}

SEC("xdp")
int xdp_sequence(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data;
	__u8 *end = (void *)(long)ctx->data_end;
	__u32 len = 0;
	struct acc a = { .sum = 0, .stop_at = 9 };
	struct acc b = { .sum = 1, .stop_at = 4 };

	if (data + 2 <= end) {
		a.stop_at = data[0] % 11;
		len = data[1];
	}
	__u64 x = len, y = 7;
	bpf_loop(len & 15, add, &a, 0);
	bpf_loop(5, mix, &x, 0);
	bpf_loop(len & 7, add, &b, len >> 20);
	bpf_loop(3, mix, &y, 0);
	bpf_loop(len & 3, mix, &x, 0);
	bpf_loop(6, add, &b, 0);
	return (a.sum ^ b.sum ^ x ^ y) & 1 ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
