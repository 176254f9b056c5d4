/* A profiler in the style of profile.py: a perf_event program samples the instruction pointer
 * (regs.ip, an 8-byte read) and the sample period (a 4-byte read of the u64, which the kernel
 * allows for that field), keyed by pid/tgid and comm, counted in a hash map. perf_event
 * programs load only with CAP_PERFMON.
 * privileged: accept
 * unprivileged: reject need CAP_PERFMON
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* struct bpf_perf_event_data on x86-64, spelled out (clang's bpf target has no x86 pt_regs). */
struct regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

struct perf_event_data {
	struct regs regs;
	__u64 sample_period;
	__u64 addr;
};

struct sample_key {
	__u64 ip;
	__u32 tgid;
	__u32 period_lo;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct sample_key);
	__type(value, __u64);
} samples SEC(".maps");

SEC("perf_event")
int sample_ip(struct perf_event_data *ctx)
{
	struct sample_key key = {};
	key.ip = ctx->regs.ip;
	key.tgid = bpf_get_current_pid_tgid() >> 32;
	key.period_lo = *(volatile __u32 *)&ctx->sample_period;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	__u64 one = 1, *n = bpf_map_lookup_elem(&samples, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&samples, &key, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
