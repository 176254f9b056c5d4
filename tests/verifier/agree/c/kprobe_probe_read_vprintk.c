/* A CO-RE-free kprobe on do_sys_openat2: reads the filename pointer from pt_regs (rsi), copies
 * the name with bpf_probe_read (the compat helper, tracing programs only) into a stack buffer,
 * then prints four values with bpf_trace_vprintk (bpf_printk with more than three arguments). Kprobes load only with CAP_PERFMON.
 * privileged: accept
 * unprivileged: reject need CAP_PERFMON
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

SEC("kprobe/do_sys_openat2")
int openat_print(struct regs *regs)
{
	char name[32];
	const char *user_name = (const char *)regs->si;
	if (bpf_probe_read(name, sizeof(name), user_name) < 0)
		return 0;
	name[31] = 0;
	__u64 id = bpf_get_current_pid_tgid();
	bpf_printk("openat %d %d %s %lx", (int)id, (int)(id >> 32), name, regs->ip);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
