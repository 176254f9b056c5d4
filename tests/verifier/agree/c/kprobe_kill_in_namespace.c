/* A kprobe in the style of a namespace-aware process killer: the current task's pid as seen
 * from a configured pid namespace (bpf_get_ns_current_pid_tgid), its cgroup id, and a perf
 * counter read with bpf_perf_event_read_value; a listed pid over its budget gets SIGKILL
 * (bpf_send_signal). Kprobes load only with CAP_PERFMON.
 * privileged: accept
 * unprivileged: reject kprobe programs need CAP_PERFMON
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct config {
	__u64 ns_dev;
	__u64 ns_ino;
	__u64 max_cycles;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} watched SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, 64);
} cycles SEC(".maps");

SEC("kprobe/do_nanosleep")
int kill_over_budget(void *ctx)
{
	struct bpf_perf_event_value value;
	struct bpf_pidns_info ns;
	struct config *cfg;
	__u32 zero = 0, pid;
	__u64 *cgroup;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return 0;
	if (bpf_get_ns_current_pid_tgid(cfg->ns_dev, cfg->ns_ino, &ns, sizeof(ns)))
		return 0;
	pid = ns.tgid;
	cgroup = bpf_map_lookup_elem(&watched, &pid);
	if (!cgroup || *cgroup != bpf_get_current_cgroup_id())
		return 0;
	if (bpf_perf_event_read_value(&cycles, BPF_F_CURRENT_CPU, &value, sizeof(value)))
		return 0;
	if (value.counter > cfg->max_cycles)
		bpf_send_signal(9);
	return 0;
}

char _license[] SEC("license") = "GPL";
