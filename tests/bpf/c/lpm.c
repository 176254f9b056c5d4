/*
 * lpm.o — program `xdp_lpm` (SEC "xdp").
 *
 * Exercises: BPF_MAP_TYPE_LPM_TRIE (BPF_F_NO_PREALLOC, as the kernel requires) with a /24 inside a
 * /16: longest-prefix lookups, and updates from the program itself with BPF_NOEXIST (the first
 * packet inserts both prefixes; later packets get -EEXIST, which is recorded).
 *
 * The program installs its own routes, so the harness seeds nothing:
 *   192.168.1.0/24 -> 1
 *   192.168.0.0/16 -> 2
 *
 * Verdicts (IPv4 over untagged Ethernet; everything else is XDP_PASS):
 *   - source matches the /24 (192.168.1.x): XDP_DROP
 *   - source matches only the /16 (192.168.0.0 - 192.168.255.255 outside 192.168.1.x): XDP_TX
 *   - no match: XDP_PASS
 *
 * Maps: `routes` (lpm_trie, key {prefixlen, 4 address bytes}, value route id), `matches` (array:
 * [0] no match, [1] matched route 1, [2] matched route 2), `inserts` (hash: {prefix, helper return
 * value} -> times seen).
 */
#include "common.h"

struct lpm_v4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct insert_key {
	__u32 prefixlen;
	__s32 ret;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16);
	__type(key, struct lpm_v4_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} matches SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, struct insert_key);
	__type(value, __u64);
} inserts SEC(".maps");

/* Inserts one route with BPF_NOEXIST and counts the helper's return value. */
static __always_inline void insert(__u32 prefixlen, __u8 a, __u8 b, __u8 c, __u32 route)
{
	struct lpm_v4_key key = { .prefixlen = prefixlen, .addr = { a, b, c, 0 } };
	struct insert_key seen_key = { .prefixlen = prefixlen };
	__u64 one = 1, *seen;

	seen_key.ret = bpf_map_update_elem(&routes, &key, &route, BPF_NOEXIST);
	seen = bpf_map_lookup_elem(&inserts, &seen_key);
	if (seen)
		__sync_fetch_and_add(seen, 1);
	else
		bpf_map_update_elem(&inserts, &seen_key, &one, BPF_NOEXIST);
}

SEC("xdp")
int xdp_lpm(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct lpm_v4_key key = { .prefixlen = 32 };
	__u32 *route, index;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;

	insert(24, 192, 168, 1, 1);
	insert(16, 192, 168, 0, 2);

	__builtin_memcpy(key.addr, &ip->saddr, 4);
	route = bpf_map_lookup_elem(&routes, &key);
	index = route ? *route : 0;
	if (index > 2)
		index = 0;
	count_in(&matches, index);
	switch (index) {
	case 1:
		return XDP_DROP;
	case 2:
		return XDP_TX;
	default:
		return XDP_PASS;
	}
}

DUET_LICENSE;
