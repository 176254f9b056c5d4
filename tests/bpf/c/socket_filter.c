/*
 * socket_filter.o — program `socket_filter` (SEC "socket", BPF_PROG_TYPE_SOCKET_FILTER).
 *
 * Exercises: the legacy packet loads (BPF_LD | BPF_ABS and BPF_LD | BPF_IND, in widths byte, half
 * and word) through LLVM's `llvm.bpf.load.*` intrinsics, the way samples/bpf wrote them. The loads
 * read the socket buffer in network byte order and return host-order values; a load past the end
 * of the data makes the program return 0 at once, which truncated frames exercise. The context is
 * only ever passed to the loads, never read as `struct __sk_buff`.
 *
 * Where offset 0 is: BPF_PROG_TEST_RUN builds an skb and calls eth_type_trans, which pulls the
 * Ethernet header, and only TC programs get it pushed back. So for this program offset 0 is the
 * first byte after the 14-byte Ethernet header (the IP header), and duet's VM must match that.
 *
 * Return value: the number of bytes of the packet to keep (0 drops it).
 *   - IPv4 TCP to port 22 or 443: 0xffffffff (keep everything)
 *   - IPv4 UDP to port 53: 128
 *   - IPv4 ICMP: 64 + the ICMP type (ldind at the variable header length)
 *   - IPv4 non-first fragment: 0
 *   - IPv6 TCP (no extension headers) to port 443: 0xffff
 *   - a load beyond the data, anything else: 0
 *
 * Maps: `seen` (array: [0] packets entering the program, [1] IPv4 packets whose protocol was
 * read, [2] IPv4 packets whose source address (load_word at 12) is in 10.0.0.0/8).
 */
#include "common.h"

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

SEC("socket")
int socket_filter(struct __sk_buff *skb)
{
	__u64 version_ihl, proto, ihl, dport;

	count_in(&seen, 0);
	version_ihl = load_byte(skb, 0);

	if ((version_ihl >> 4) == 6) {
		if (load_byte(skb, 6) != IPPROTO_TCP)
			return 0;
		return load_half(skb, 40 + 2) == 443 ? 0xffff : 0;
	}
	if ((version_ihl >> 4) != 4)
		return 0;

	proto = load_byte(skb, 9);
	count_in(&seen, 1);
	if ((load_word(skb, 12) >> 24) == 10)
		count_in(&seen, 2);
	if (load_half(skb, 6) & IP_OFFSET_MASK)
		return 0;
	ihl = (version_ihl & 0xf) << 2;

	switch (proto) {
	case IPPROTO_TCP:
		dport = load_half(skb, ihl + 2);
		return (dport == 22 || dport == 443) ? -1 : 0;
	case IPPROTO_UDP:
		dport = load_half(skb, ihl + 2);
		return dport == 53 ? 128 : 0;
	case IPPROTO_ICMP:
		return 64 + load_byte(skb, ihl);
	default:
		return 0;
	}
}

DUET_LICENSE;
