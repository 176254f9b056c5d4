/* A sieve of Eratosthenes over a stack array, counting primes (nested loops with a data-dependent
 * inner start, and an imprecise count).
 * privileged: accept
 * unprivileged: reject unprivileged loader
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } out SEC(".maps");
SEC("xdp")
int sieve(struct xdp_md *ctx)
{
	__u8 comp[64] = {};
	__u32 k = 0, primes = 0;
	__u64 *v;
	for (__u32 i = 2; i < 64; i++) {
		if (comp[i])
			continue;
		primes++;
		for (__u32 j = i * i; j < 64; j += i)
			comp[j] = 1;
	}
	v = bpf_map_lookup_elem(&out, &k);
	if (v)
		*v = primes;
	return XDP_PASS;
}
char _license[] SEC("license") = "GPL";
