/* A hash of maps keyed by a 4-byte tenant id, whose inner maps are hashes from a 16-byte flow
 * key to a u64: the inner map from the outer lookup is updated, looked up and deleted from.
 * inner-map: tenants hash key=16 value=8 entries=64
 * privileged: accept
 * unprivileged: accept
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct flow {
	__u32 saddr, daddr;
	__u16 sport, dport;
	__u32 proto;
};

struct flows {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct flow);
	__type(value, __u64);
};

struct flows tenant_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, struct flows);
} tenants SEC(".maps") = { .values = { [0] = &tenant_flows } };

SEC("xdp")
int per_tenant(struct xdp_md *ctx)
{
	__u32 tenant = ctx->ingress_ifindex;
	void *flows = bpf_map_lookup_elem(&tenants, &tenant);
	if (!flows)
		return XDP_PASS;
	struct flow f = { .saddr = 1, .daddr = 2, .sport = 3, .dport = 4, .proto = 6 };
	__u64 one = 1;
	bpf_map_update_elem(flows, &f, &one, BPF_ANY);
	__u64 *n = bpf_map_lookup_elem(flows, &f);
	if (n && *n > 100)
		bpf_map_delete_elem(flows, &f);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
