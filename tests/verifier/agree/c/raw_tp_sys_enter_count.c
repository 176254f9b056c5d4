/* A raw tracepoint on sys_enter: args[0] is the struct pt_regs pointer, args[1] the syscall
 * number. Counts syscalls per number in a hash map, reads the first argument (pt_regs->di)
 * with bpf_probe_read_kernel, and prints openat calls with bpf_printk. Raw tracepoints load
 * only with CAP_PERFMON.
 * privileged: accept
 * unprivileged: reject need CAP_PERFMON
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 512);
	__type(key, __u64);
	__type(value, __u64);
} counts SEC(".maps");

SEC("raw_tp/sys_enter")
int count_syscalls(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 nr = ctx->args[1];
	__u64 one = 1, *n = bpf_map_lookup_elem(&counts, &nr);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&counts, &nr, &one, BPF_NOEXIST);
	if (nr == 257) {
		unsigned long di = 0;
		const char *regs = (const char *)ctx->args[0];
		bpf_probe_read_kernel(&di, sizeof(di), regs + 112);
		bpf_printk("openat dfd=%ld", (long)di);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
