/* Map in map, as katran keeps per-VIP tables: an array of maps whose inner maps are arrays of
 * u64 counters. The outer lookup yields an inner map (or NULL); once checked, it is the map
 * argument of the inner lookup, whose value is read and incremented.
 * inner-map: outer array key=4 value=8 entries=4
 * privileged: accept
 * unprivileged: accept
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
};

struct inner counters_a SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = { .values = { [0] = &counters_a } };

SEC("xdp")
int count_in_inner(struct xdp_md *ctx)
{
	__u32 table = ctx->rx_queue_index & 1, slot = 3;
	void *inner = bpf_map_lookup_elem(&outer, &table);
	if (!inner)
		return XDP_PASS;
	__u64 *n = bpf_map_lookup_elem(inner, &slot);
	if (!n)
		return XDP_PASS;
	__sync_fetch_and_add(n, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
