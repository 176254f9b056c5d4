/* A CO-RE-free kprobe in the style of opensnoop: reads the probed function's arguments and
 * instruction pointer from struct pt_regs at the x86-64 offsets (no BTF relocations), fills a
 * ring buffer record (reserve, write, submit; discarded for filtered flags) and counts
 * events per CPU. Kprobes load only with CAP_PERFMON.
 * privileged: accept
 * unprivileged: reject kprobe programs need CAP_PERFMON
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* x86-64 struct pt_regs, spelled out so that the offsets are constants. */
struct regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

struct open_event {
	__u64 ts_ns;
	__u64 ip;
	__s32 dfd;
	__u32 cpu;
	__u64 filename_ptr;
	__u64 how_ptr;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s32);
} only_dfd SEC(".maps");

SEC("kprobe/do_sys_openat2")
int trace_openat2(struct regs *regs)
{
	struct open_event *e;
	__u32 key = 0;
	__s32 *want;
	__u64 *n;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		key = 1;
		n = bpf_map_lookup_elem(&stats, &key);
		if (n)
			*n += 1;
		return 0;
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->ip = regs->ip;
	e->dfd = (__s32)regs->di;
	e->filename_ptr = regs->si;
	e->how_ptr = regs->dx;
	e->cpu = bpf_get_smp_processor_id();

	want = bpf_map_lookup_elem(&only_dfd, &key);
	if (want && *want && *want != e->dfd) {
		bpf_ringbuf_discard(e, 0);
		return 0;
	}
	bpf_ringbuf_submit(e, 0);
	n = bpf_map_lookup_elem(&stats, &key);
	if (n)
		*n += 1;
	return 0;
}

char _license[] SEC("license") = "GPL";
