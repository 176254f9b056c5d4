/* The inner map's 16-byte key read from a 4-byte stack variable at the top of the frame: the
 * key size comes from the inner map template, and the read runs past the frame.
 * inner-map: tenants hash key=16 value=8 entries=64
 * privileged: reject 16-byte stack read at fp-4 is outside the 512-byte frame
 * unprivileged: reject 16-byte stack read at fp-4 is outside the 512-byte frame
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
int short_key(struct xdp_md *ctx)
{
	__u32 tenant = 0;
	void *flows = bpf_map_lookup_elem(&tenants, &tenant);
	if (!flows)
		return XDP_PASS;
	if (bpf_map_lookup_elem(flows, &tenant))
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
