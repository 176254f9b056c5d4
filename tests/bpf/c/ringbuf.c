/*
 * ringbuf.o — program `xdp_ringbuf` (SEC "xdp").
 *
 * Exercises: the ring buffer map and all three ways to write it:
 *   - bpf_ringbuf_output (copy from the stack) for TCP over IPv4;
 *   - bpf_ringbuf_reserve + bpf_ringbuf_submit for UDP over IPv4;
 *   - bpf_ringbuf_reserve + bpf_ringbuf_discard for every other frame with an Ethernet header
 *     (the reservation is made, filled, then thrown away: a consumer never sees it).
 * Every record is fully written (no padding left uninitialised, since reserved memory is not
 * zeroed) and holds nothing time-dependent, so the records a consumer drains after the run are
 * comparable byte for byte. `events` (64 KiB) holds far more records than the corpus produces.
 *
 * Verdicts: frames shorter than an Ethernet header: XDP_ABORTED; TCP and UDP over IPv4: XDP_PASS;
 * everything else: XDP_DROP. A failed reservation counts in `stats` and gives XDP_ABORTED.
 *
 * Maps: `events` (ringbuf), `stats` (array: [0] records output, [1] submitted, [2] discarded,
 * [3] failed reservations, [4] sum of bpf_ringbuf_output return values, [5] sequence number).
 */
#include "common.h"

struct event {
	__u64 seq;      /* 1 for the first frame the program sees, then counting up */
	__u32 len;      /* frame length */
	__u16 h_proto;  /* EtherType, network byte order */
	__u8 l4proto;   /* IPv4 protocol, 0 when not IPv4 */
	__u8 how;       /* 1 output, 2 submit, 3 discard */
	__u8 src[ETH_ALEN];
	__u8 dst[ETH_ALEN];
	__u32 pad;      /* written as zero, so the record has no uninitialised bytes */
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __s64);
} stats SEC(".maps");

static __always_inline __s64 *stat(__u32 key)
{
	return bpf_map_lookup_elem(&stats, &key);
}

/* Fills an event; `ev` may be stack or ring buffer memory. */
static __always_inline void fill(struct event *ev, struct ethhdr *eth, __u64 seq, __u32 len, __u8 l4proto,
				 __u8 how)
{
	ev->seq = seq;
	ev->len = len;
	ev->h_proto = eth->h_proto;
	ev->l4proto = l4proto;
	ev->how = how;
	__builtin_memcpy(ev->src, eth->h_source, ETH_ALEN);
	__builtin_memcpy(ev->dst, eth->h_dest, ETH_ALEN);
	ev->pad = 0;
}

SEC("xdp")
int xdp_ringbuf(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct event *rec;
	__u32 len = data_end - data;
	__u8 l4proto = 0;
	__s64 *slot;
	__u64 seq = 0;

	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	slot = stat(5);
	if (slot) {
		*slot += 1;
		seq = *slot;
	}
	ip = (void *)(eth + 1);
	if (eth->h_proto == bpf_htons(ETH_P_IP) && (void *)(ip + 1) <= data_end)
		l4proto = ip->protocol;

	if (l4proto == IPPROTO_TCP) {
		struct event ev;
		long ret;

		fill(&ev, eth, seq, len, l4proto, 1);
		ret = bpf_ringbuf_output(&events, &ev, sizeof(ev), 0);
		slot = stat(4);
		if (slot)
			*slot += ret;
		slot = stat(0);
		if (slot)
			*slot += 1;
		return XDP_PASS;
	}

	rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);
	if (!rec) {
		slot = stat(3);
		if (slot)
			*slot += 1;
		return XDP_ABORTED;
	}
	if (l4proto == IPPROTO_UDP) {
		fill(rec, eth, seq, len, l4proto, 2);
		bpf_ringbuf_submit(rec, 0);
		slot = stat(1);
		if (slot)
			*slot += 1;
		return XDP_PASS;
	}
	fill(rec, eth, seq, len, l4proto, 3);
	bpf_ringbuf_discard(rec, 0);
	slot = stat(2);
	if (slot)
		*slot += 1;
	return XDP_DROP;
}

DUET_LICENSE;
