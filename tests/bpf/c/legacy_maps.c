/*
 * legacy_maps.o — program `xdp_legacy` (SEC "xdp").
 *
 * Exercises: map definitions in the legacy `maps` ELF section (`struct bpf_map_def`, the pre-BTF
 * format that iproute2 and old samples use). libbpf 1.x and bpftool refuse this section; aya and
 * duet load it. The program itself is deliberately plain.
 *
 * Verdicts: frames shorter than an Ethernet header: XDP_ABORTED; ARP: XDP_DROP; anything else:
 * XDP_PASS.
 *
 * Maps (legacy): `ethertype_cnt` (hash: EtherType in host order -> frames), `len_hist` (array:
 * frame length / 128, capped at 15 -> frames).
 */
#include "common.h"

/* The legacy definition; libbpf 1.x dropped it from its headers, so it is declared here. */
struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

struct bpf_map_def SEC("maps") ethertype_cnt = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 32,
};

struct bpf_map_def SEC("maps") len_hist = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 16,
};

SEC("xdp")
int xdp_legacy(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 proto, bucket;
	__u64 one = 1, *seen;

	bucket = (__u32)(data_end - data) / 128;
	if (bucket > 15)
		bucket = 15;
	count_in(&len_hist, bucket);

	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	proto = bpf_ntohs(eth->h_proto);
	seen = bpf_map_lookup_elem(&ethertype_cnt, &proto);
	if (seen)
		__sync_fetch_and_add(seen, 1);
	else
		bpf_map_update_elem(&ethertype_cnt, &proto, &one, BPF_ANY);
	return proto == ETH_P_ARP ? XDP_DROP : XDP_PASS;
}

DUET_LICENSE;
