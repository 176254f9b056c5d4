/*
 * maps.o — program `xdp_maps` (SEC "xdp").
 *
 * Exercises: hash, lru_hash, percpu_array, percpu_hash and array maps from a program; update flags
 * BPF_ANY / BPF_NOEXIST / BPF_EXIST; delete; the helpers' negative errno returns (EEXIST, ENOENT,
 * EINVAL, E2BIG) stored into a map so the kernel's and duet's error semantics get compared;
 * bpf_get_smp_processor_id stored into a map; atomic adds on map values; a bpf-to-bpf call that
 * records a helper's result.
 *
 * Determinism: the harness runs every packet on CPU 0 (it pins its thread), so per-CPU values and
 * the stored processor id are stable. `dst_lru` has room for far more destinations than the corpus
 * holds, so LRU eviction (which the kernel does in per-CPU batches) never happens.
 *
 * Verdicts (IPv4 over untagged Ethernet only; everything else is XDP_PASS):
 *   - a new source address when `small` (4 entries) is already full: XDP_DROP
 *   - otherwise: XDP_PASS
 *
 * Maps:
 *   `src_count`   hash       saddr -> packets
 *   `dst_lru`     lru_hash   daddr -> {packets, bytes}
 *   `proto_pcpu`  percpu_array  IP protocol -> packets
 *   `port_pcpu`   percpu_hash   destination port (TCP/UDP) -> packets
 *   `small`       hash (4 entries) saddr -> first frame length seen
 *   `results`     hash       {operation, helper return value} -> times seen
 *   `cpu`         array      [0] = bpf_get_smp_processor_id() of the last packet
 *   `fixed`       array (2 entries), target of the operations that must fail
 */
#include "common.h"

/* Which operation a `results` entry describes. */
enum op {
	OP_SRC_NOEXIST = 1,   /* hash update BPF_NOEXIST of a new source: 0 */
	OP_SRC_EXIST_MISS = 2, /* hash update BPF_EXIST of an absent key: -ENOENT */
	OP_DST_EXIST = 3,     /* lru update BPF_EXIST: 0 or -ENOENT */
	OP_DST_NOEXIST = 4,   /* lru update BPF_NOEXIST after a miss: 0 */
	OP_DST_DELETE = 5,    /* lru delete on DNS traffic: 0 or -ENOENT */
	OP_ARRAY_NOEXIST = 6, /* array update BPF_NOEXIST: always -EEXIST */
	OP_ARRAY_DELETE = 7,  /* array delete: always -EINVAL */
	OP_ARRAY_OOB = 8,     /* array update past max_entries: -E2BIG */
	OP_SMALL_ANY = 9,     /* small hash update BPF_ANY: 0 or -E2BIG when full */
	OP_PORT_NOEXIST = 10, /* percpu hash update BPF_NOEXIST: 0 */
	OP_BAD_FLAGS = 11,    /* hash update with flags 7: -EINVAL */
};

struct result_key {
	__u32 op;
	__s32 ret;
};

struct dst_stats {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} src_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct dst_stats);
} dst_lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} proto_pcpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} port_pcpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} small SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct result_key);
	__type(value, __u64);
} results SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} fixed SEC(".maps");

/* Counts one occurrence of `ret` for `op`; a subprogram so the errno travels through a BPF call. */
static __attribute__((noinline)) long record(__u32 op, long ret)
{
	struct result_key key = { .op = op, .ret = (__s32)ret };
	__u64 one = 1;
	__u64 *seen = bpf_map_lookup_elem(&results, &key);

	if (seen)
		__sync_fetch_and_add(seen, 1);
	else
		bpf_map_update_elem(&results, &key, &one, BPF_NOEXIST);
	return ret;
}

SEC("xdp")
int xdp_maps(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 saddr, daddr, proto, key, len, port = 0;
	__u32 *cpu_slot;
	__u64 one = 1, *count;
	struct dst_stats *stats;
	long ret;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	saddr = ip->saddr;
	daddr = ip->daddr;
	proto = ip->protocol;
	len = data_end - data;

	/* The processor id: always 0 under the harness, which pins itself to CPU 0. */
	key = 0;
	cpu_slot = bpf_map_lookup_elem(&cpu, &key);
	if (cpu_slot)
		*cpu_slot = bpf_get_smp_processor_id();

	/* Hash: increment, or insert with BPF_NOEXIST. An EXIST update of a key known to be absent fails. */
	count = bpf_map_lookup_elem(&src_count, &saddr);
	if (count) {
		__sync_fetch_and_add(count, 1);
	} else {
		record(OP_SRC_EXIST_MISS, bpf_map_update_elem(&src_count, &saddr, &one, BPF_EXIST));
		record(OP_SRC_NOEXIST, bpf_map_update_elem(&src_count, &saddr, &one, BPF_NOEXIST));
	}
	record(OP_BAD_FLAGS, bpf_map_update_elem(&src_count, &saddr, &one, 7));

	/* LRU hash: read-modify-write with BPF_EXIST, falling back to BPF_NOEXIST for a new key. */
	stats = bpf_map_lookup_elem(&dst_lru, &daddr);
	{
		struct dst_stats next = { .packets = 1, .bytes = len };

		if (stats) {
			next.packets = stats->packets + 1;
			next.bytes = stats->bytes + len;
		}
		ret = record(OP_DST_EXIST, bpf_map_update_elem(&dst_lru, &daddr, &next, BPF_EXIST));
		if (ret != 0)
			record(OP_DST_NOEXIST, bpf_map_update_elem(&dst_lru, &daddr, &next, BPF_NOEXIST));
	}

	/* Per-CPU array indexed by the protocol number, which is always below max_entries. */
	count = bpf_map_lookup_elem(&proto_pcpu, &proto);
	if (count)
		*count += 1;

	/* Array maps: every element exists, so NOEXIST, delete and out-of-range updates fail. */
	key = 1;
	record(OP_ARRAY_NOEXIST, bpf_map_update_elem(&fixed, &key, &one, BPF_NOEXIST));
	record(OP_ARRAY_DELETE, bpf_map_delete_elem(&fixed, &key));
	key = 2;
	record(OP_ARRAY_OOB, bpf_map_update_elem(&fixed, &key, &one, BPF_ANY));
	key = 0;
	count = bpf_map_lookup_elem(&fixed, &key);
	if (count)
		*count += len;

	/* Transport ports for TCP and UDP without IPv4 options. */
	if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP) && ip->ihl == 5) {
		struct udphdr *uh = (void *)(ip + 1);

		if ((void *)(uh + 1) <= data_end) {
			port = bpf_ntohs(uh->dest);
			count = bpf_map_lookup_elem(&port_pcpu, &port);
			if (count)
				*count += 1;
			else
				record(OP_PORT_NOEXIST, bpf_map_update_elem(&port_pcpu, &port, &one, BPF_NOEXIST));
		}
	}

	/* DNS traffic removes its destination from the LRU map again. */
	if (proto == IPPROTO_UDP && port == 53)
		record(OP_DST_DELETE, bpf_map_delete_elem(&dst_lru, &daddr));

	/* A 4-entry hash: the fifth distinct source gets -E2BIG, and its packets are dropped. */
	if (!bpf_map_lookup_elem(&small, &saddr)) {
		ret = record(OP_SMALL_ANY, bpf_map_update_elem(&small, &saddr, &len, BPF_ANY));
		if (ret != 0)
			return XDP_DROP;
	}
	return XDP_PASS;
}

DUET_LICENSE;
