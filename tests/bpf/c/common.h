/*
 * Definitions shared by duet's C test programs.
 *
 * Every program in this directory is compiled with
 *   clang -O2 -g -target bpf -I/usr/include/$(uname -m)-linux-gnu -c <name>.c -o target/bpf/<name>.o
 * and must be accepted by the Linux kernel verifier unchanged, because the differential test runs
 * the same object in the kernel (BPF_PROG_TEST_RUN) and in duet's userspace VM.
 */
#ifndef DUET_TEST_COMMON_H
#define DUET_TEST_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/*
 * The kernel only checks that the license string is GPL-compatible, which some helpers require;
 * every program declares it with this macro so the choice is made in one place.
 */
#define DUET_LICENSE char LICENSE[] SEC("license") = "Dual MIT/GPL"

/* An 802.1Q / 802.1ad tag as it follows the Ethernet addresses. */
struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

/*
 * ICMP type numbers; <linux/icmp.h> pulls in libc socket headers that do not build for the BPF
 * target, so the two values needed are spelled out.
 */
#define ICMP_ECHO_REQUEST 8
#define ICMPV6_ECHO_REQUEST 128

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

/* IPv4 fragment offset mask (the low 13 bits of frag_off) and the more-fragments flag. */
#define IP_OFFSET_MASK 0x1FFF
#define IP_MF 0x2000

/* Returns true when the EtherType is a VLAN tag. */
static __always_inline int is_vlan(__be16 proto)
{
	return proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD);
}

/*
 * Adds one to a 64-bit counter in an array map. A missing slot is ignored: the key is always in
 * range in these programs, but the verifier still needs the NULL check.
 */
static __always_inline void count_in(void *map, __u32 key)
{
	__u64 *value = bpf_map_lookup_elem(map, &key);

	if (value)
		__sync_fetch_and_add(value, 1);
}

#endif /* DUET_TEST_COMMON_H */
