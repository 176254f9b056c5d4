/* An execsnoop-style tracepoint program without CO-RE: reads the sys_enter_execve record's
 * filename pointer (offset 16 of the record, after the common fields and the syscall number),
 * copies the path with bpf_probe_read_user_str, the command with bpf_get_current_comm, the ids
 * with bpf_get_current_pid_tgid and bpf_get_current_uid_gid, and sends the event with
 * bpf_perf_event_output into a perf event array. Tracepoints load only with CAP_PERFMON.
 * privileged: accept
 * unprivileged: reject need CAP_PERFMON
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct exec_event {
	__u32 pid;
	__u32 tgid;
	__u32 uid;
	__u32 gid;
	char comm[16];
	char path[128];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_event);
} scratch SEC(".maps");

/* The record of syscalls/sys_enter_execve as the format file gives it. */
struct sys_enter_execve {
	__u64 common;
	__s64 syscall_nr;
	const char *filename;
	const char *const *argv;
	const char *const *envp;
};

SEC("tp/syscalls/sys_enter_execve")
int execsnoop(struct sys_enter_execve *ctx)
{
	__u32 zero = 0;
	struct exec_event *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	__u64 ug = bpf_get_current_uid_gid();
	e->pid = id;
	e->tgid = id >> 32;
	e->uid = ug;
	e->gid = ug >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	long n = bpf_probe_read_user_str(e->path, sizeof(e->path), ctx->filename);
	if (n < 0)
		return 0;
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, e, sizeof(*e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
