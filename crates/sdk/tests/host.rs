//! The SDK on the host, used the way programs use it: maps declared with `#[duet::map]`,
//! programs with `#[duet::xdp]`/`#[duet::probe]`, run through `duet::testing`. The host backend
//! stores maps in `duet-maps`, so these tests also pin down that every map operation has the
//! kernel's semantics (errno values, flags, LRU eviction, array bounds) as the program sees it.

use core::mem::offset_of;

use duet::net::{ETH_HLEN, Ipv4Hdr, Ports, UdpHdr};
use duet::testing::{self, bytes_of, drain, from_bytes, run_probe, run_xdp, tcp_frame, udp_frame};
use duet::{
    Array, BPF_ANY, BPF_EXIST, BPF_F_NO_PREALLOC, BPF_NOEXIST, Errno, HashMap, LpmKey, LpmTrie, LruHashMap,
    PerCpuArray, PerCpuHashMap, ProbeContext, RingBuf, XdpAction, XdpContext,
};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, duet::Pod)]
#[repr(C)]
struct Pair {
    a: u64,
    b: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, duet::Pod)]
#[repr(C)]
struct Tuple([u8; 2], u16);

#[duet::map]
static HASH: HashMap<u32, Pair> = HashMap::with_max_entries(2, 0);

#[duet::map]
static LRU: LruHashMap<u32, u64> = LruHashMap::with_max_entries(2, 0);

#[duet::map]
static ARRAY: Array<u64> = Array::with_max_entries(4, 0);

#[duet::map]
static PERCPU: PerCpuArray<Pair> = PerCpuArray::with_max_entries(1, 0);

#[duet::map]
static PERCPU_HASH: PerCpuHashMap<[u8; 4], u32> = PerCpuHashMap::with_max_entries(8, 0);

const MAX_SMALL: u32 = 4;

#[duet::map]
static SMALL: HashMap<u8, u8> = HashMap::with_max_entries(MAX_SMALL * 2, 0);

#[duet::map]
static EVENTS: RingBuf = RingBuf::with_byte_size(4096, 0);

#[duet::map]
static NETS: LpmTrie<[u8; 4], u32> = LpmTrie::with_max_entries(64, BPF_F_NO_PREALLOC);

#[test]
fn lpm_tries_find_the_longest_matching_prefix() {
    let net = |a: [u8; 4], len: u32| LpmKey::new(len, a);
    NETS.insert(&net([10, 0, 0, 0], 8), &1, BPF_ANY).unwrap();
    NETS.insert(&net([10, 1, 0, 0], 16), &2, BPF_ANY).unwrap();
    NETS.insert(&net([10, 1, 2, 3], 32), &3, BPF_ANY).unwrap();
    let addr = |a: [u8; 4]| NETS.get(&LpmKey::new(32, a));
    assert_eq!(addr([10, 9, 9, 9]), Some(1));
    assert_eq!(addr([10, 1, 9, 9]), Some(2));
    assert_eq!(addr([10, 1, 2, 3]), Some(3));
    assert_eq!(addr([11, 0, 0, 1]), None);
    // A lookup key's own prefix length bounds the match.
    assert_eq!(NETS.get(&net([10, 1, 2, 3], 16)), Some(2));
    // Bits past a prefix never count; a prefix longer than the data does not exist.
    assert_eq!(NETS.insert(&net([10, 1, 0, 0], 16), &4, BPF_NOEXIST), Err(Errno::EEXIST));
    assert_eq!(NETS.insert(&net([10, 0, 0, 0], 33), &5, BPF_ANY), Err(Errno::EINVAL));
    // Removing is by exact prefix.
    assert_eq!(NETS.remove(&net([10, 1, 0, 0], 16)), Ok(()));
    assert_eq!(addr([10, 1, 9, 9]), Some(1));
    assert_eq!(NETS.remove(&net([10, 1, 0, 0], 16)), Err(Errno::ENOENT));
}

#[test]
fn hash_maps_have_kernel_semantics() {
    let one = Pair { a: 1, b: 2 };
    assert_eq!(HASH.get(&1), None);
    assert_eq!(HASH.get_or_default(&1), Pair::default());
    assert_eq!(HASH.insert(&1, &one, BPF_EXIST), Err(Errno::ENOENT));
    assert_eq!(HASH.insert(&1, &one, BPF_NOEXIST), Ok(()));
    assert_eq!(HASH.insert(&1, &one, BPF_NOEXIST), Err(Errno::EEXIST));
    assert!(HASH.contains_key(&1));
    assert_eq!(HASH.get(&1), Some(one));
    assert_eq!(HASH.insert(&2, &one, BPF_ANY), Ok(()));
    assert_eq!(HASH.insert(&3, &one, BPF_ANY), Err(Errno::E2BIG), "a full hash map refuses new keys");
    assert_eq!(HASH.insert(&2, &Pair { a: 5, b: 6 }, BPF_EXIST), Ok(()), "but updates existing ones");
    assert_eq!(HASH.remove(&2), Ok(()));
    assert_eq!(HASH.remove(&2), Err(Errno::ENOENT));
    assert_eq!(HASH.insert(&3, &one, 7), Err(Errno::EINVAL), "unknown flags");
}

#[test]
fn counters_add_atomically_at_checked_offsets() {
    HASH.insert(&9, &Pair::default(), BPF_ANY).unwrap();
    HASH.add_u64(&9, 5).unwrap();
    HASH.add_u64_at(&9, offset_of!(Pair, b), 7).unwrap();
    assert_eq!(HASH.get(&9), Some(Pair { a: 5, b: 7 }));
    assert_eq!(HASH.add_u64(&10, 1), Err(Errno::ENOENT));
    assert_eq!(HASH.add_u64_at(&9, 4, 1), Err(Errno::EINVAL), "unaligned");
    assert_eq!(HASH.add_u64_at(&9, 16, 1), Err(Errno::EINVAL), "past the value");
    assert_eq!(SMALL.insert(&1, &1, BPF_ANY), Ok(()));
    assert_eq!(SMALL.add_u64(&1, 1), Err(Errno::EINVAL), "a 1-byte value has no u64");
}

#[test]
fn arrays_are_preallocated_and_bounded() {
    assert_eq!(ARRAY.get(3), Some(0));
    assert_eq!(ARRAY.get(4), None);
    ARRAY.set(3, &41).unwrap();
    ARRAY.add_u64(3, 1).unwrap();
    assert_eq!(ARRAY.get_or_default(3), 42);
    assert_eq!(ARRAY.set(4, &1), Err(Errno::E2BIG));
    assert_eq!(ARRAY.add_u64(4, 1), Err(Errno::ENOENT));
    PERCPU.add_u64_at(0, offset_of!(Pair, b), 3).unwrap();
    assert_eq!(PERCPU.get(0), Some(Pair { a: 0, b: 3 }));
    PERCPU_HASH.insert(&[1, 2, 3, 4], &7, BPF_ANY).unwrap();
    assert_eq!(PERCPU_HASH.get(&[1, 2, 3, 4]), Some(7));
}

#[test]
fn lru_maps_evict_the_least_recently_used() {
    LRU.insert(&1, &10, BPF_ANY).unwrap();
    LRU.insert(&2, &20, BPF_ANY).unwrap();
    assert_eq!(LRU.get(&1), Some(10)); // 2 is now the least recently used
    LRU.insert(&3, &30, BPF_ANY).unwrap();
    assert_eq!((LRU.get(&1), LRU.get(&2), LRU.get(&3)), (Some(10), None, Some(30)));
}

#[test]
fn max_entries_may_be_any_constant_expression() {
    for key in 0..8 {
        SMALL.insert(&key, &key, BPF_ANY).unwrap();
    }
    assert_eq!(SMALL.insert(&8, &8, BPF_ANY), Err(Errno::E2BIG));
}

#[test]
fn ring_buffers_keep_records_in_order() {
    EVENTS.output(&Pair { a: 1, b: 2 }).unwrap();
    EVENTS.output(&7u32).unwrap();
    let records = drain(&EVENTS);
    assert_eq!(records.len(), 2);
    assert_eq!(from_bytes::<Pair>(&records[0]), Some(Pair { a: 1, b: 2 }));
    assert_eq!(records[1], 7u32.to_ne_bytes());
    assert!(drain(&EVENTS).is_empty());
    // 4096 bytes hold fewer than 4096 / (8 + 16) records: the rest is EAGAIN.
    let written = (0..200).take_while(|_| EVENTS.output(&Pair::default()).is_ok()).count();
    assert!(written > 100 && written < 200, "{written}");
    assert_eq!(EVENTS.output(&Pair::default()), Err(Errno::EAGAIN));
}

#[test]
fn maps_are_per_thread_and_reset() {
    ARRAY.set(0, &5).unwrap();
    std::thread::spawn(|| assert_eq!(ARRAY.get(0), Some(0))).join().unwrap();
    assert_eq!(ARRAY.get(0), Some(5));
    testing::reset();
    assert_eq!(ARRAY.get(0), Some(0));
}

// === programs ===

/// Swaps UDP ports and answers port-7 echo requests; exercises loads and stores at variable
/// offsets.
#[duet::xdp]
fn echo(ctx: XdpContext) -> XdpAction {
    let Some(ip) = ctx.ipv4() else { return XdpAction::Pass };
    let l4 = ETH_HLEN + ip.header_len();
    let Some(udp) = ctx.load::<UdpHdr>(l4) else { return XdpAction::Pass };
    if ip.protocol != 17 || udp.ports.dst_port() != 7 {
        return XdpAction::Pass;
    }
    let swapped = Ports { src: udp.ports.dst, dst: udp.ports.src };
    match ctx.store(l4, &swapped) {
        Some(()) => XdpAction::Tx,
        None => XdpAction::Aborted,
    }
}

#[test]
fn xdp_programs_read_and_write_the_packet() {
    let mut request = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 5555, 7, 4);
    assert_eq!(run_xdp(echo, &mut request), XdpAction::Tx);
    assert_eq!(&request[34..38], &[0, 7, 0x15, 0xb3]);
    let mut other = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 5555, 8, 4);
    assert_eq!(run_xdp(echo, &mut other), XdpAction::Pass);
    // A UDP header cut short is not read.
    let mut short = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 5555, 7, 0);
    short.truncate(40);
    assert_eq!(run_xdp(echo, &mut short), XdpAction::Pass);
}

#[test]
fn packet_accessors_check_every_bound() {
    let mut frame = tcp_frame([192, 168, 1, 2], [10, 0, 0, 1], 1, 2, 0);
    let len = frame.len();
    run_xdp(
        |ctx| {
            assert_eq!(ctx.len(), len);
            assert_eq!(ctx.load::<u8>(len - 1), Some(0));
            assert_eq!(ctx.load::<u8>(len), None);
            assert_eq!(ctx.load::<u16>(len - 1), None);
            assert_eq!(ctx.load::<u64>(usize::MAX - 3), None);
            assert_eq!(ctx.store(len - 1, &1u16), None);
            let ip: Ipv4Hdr = ctx.ipv4().unwrap();
            assert_eq!((ip.src_addr(), ip.protocol, ip.header_len()), (0xc0a8_0102, 6, 20));
            XdpAction::Pass
        },
        &mut frame,
    );
    // Not IPv4: no IPv4 header.
    frame[12] = 0x86;
    frame[13] = 0xdd;
    run_xdp(
        |ctx| {
            assert_eq!(ctx.ipv4(), None);
            XdpAction::Pass
        },
        &mut frame,
    );
    run_xdp(
        |ctx| {
            assert!(ctx.is_empty() && ctx.eth().is_none());
            XdpAction::Pass
        },
        &mut [],
    );
}

#[duet::probe]
fn on_event(ctx: ProbeContext) {
    if let Some(Tuple(tag, value)) = ctx.read::<Tuple>() {
        ARRAY.set(u32::from(tag[0]), &u64::from(value)).unwrap_or(());
        duet::trace!("event");
    }
}

#[test]
fn probes_read_their_record() {
    run_probe(on_event, &bytes_of(&Tuple([2, 0], 300)));
    assert_eq!(ARRAY.get(2), Some(300));
    run_probe(on_event, &[1, 0, 5]); // too short: ignored
    assert_eq!(ARRAY.get(1), Some(0));
    assert_eq!(testing::take_trace(), ["event"]);
    run_probe(
        |ctx| {
            assert_eq!(ctx.load::<u8>(2), Some(5));
            assert_eq!(ctx.load::<u8>(3), None);
        },
        &[0, 0, 5],
    );
    // The record is six 64-bit arguments, as a kprobe's registers give them: nothing past them.
    let mut args = Vec::new();
    for a in [7u64, 8, 9, 10, 11, 12, 13] {
        args.extend(a.to_le_bytes());
    }
    run_probe(
        |ctx| {
            assert_eq!((ctx.arg(0), ctx.arg(5)), (Some(7), Some(12)));
            assert_eq!(ctx.arg(6), None, "a seventh word is not an argument");
            assert_eq!(ctx.load::<u64>(duet::PROBE_RECORD_LEN), None);
            assert_eq!(ctx.load::<u32>(44), Some(0));
        },
        &args,
    );
    run_probe(|ctx| assert_eq!((ctx.arg(0), ctx.arg(1)), (Some(1), None)), &1u64.to_le_bytes());
}

#[test]
fn time_and_randomness_are_deterministic_like_the_vm() {
    // `duet run --deterministic`: 1 s, then +1 µs per read; xorshift from a fixed seed.
    assert_eq!(duet::ktime_get_ns(), 1_000_000_000);
    assert_eq!(duet::ktime_get_ns(), 1_000_001_000);
    testing::set_clock(42, 0);
    assert_eq!((duet::ktime_get_ns(), duet::ktime_get_ns()), (42, 42));
    let first = duet::get_prandom_u32();
    testing::reset();
    assert_eq!(duet::get_prandom_u32(), first);
    testing::set_random_seed(7);
    assert_ne!(duet::get_prandom_u32(), first);
    assert_eq!(duet::get_smp_processor_id(), 0);
}

#[test]
fn map_records_encode_the_manifest_entry() {
    let record: [u8; 36] = duet::__private::map_record::<HashMap<u32, Pair, 2, 0>, 36>(5, "HASH");
    assert_eq!(&record[..4], b"DMAP");
    let words: Vec<u32> = record[4..32].chunks(4).map(|w| u32::from_le_bytes(w.try_into().unwrap())).collect();
    assert_eq!(words, [36, 5, 1, 4, 16, 2, 0]);
    assert_eq!(&record[32..], b"HASH");
}

#[duet::map]
static SOCKS: duet::SockMap = duet::SockMap::with_max_entries(2, 0);

#[duet::sock_ops]
fn file_in_slot(ctx: duet::SockOpsContext) {
    if ctx.op() == duet::sock::op::ACTIVE_ESTABLISHED_CB {
        let _ = SOCKS.insert_from_sock_ops(&ctx, u32::from(ctx.local_port() % 2), BPF_ANY);
    }
}

#[duet::sk_msg]
fn to_slot_one(msg: duet::SkMsgContext) -> duet::SkMsgAction {
    SOCKS.redirect_msg(&msg, 1, duet::sock::BPF_F_INGRESS);
    duet::SkMsgAction::Pass
}

#[test]
fn sock_maps_file_sockets_by_slot_and_redirect_to_them() {
    testing::reset();
    let (a, b) = (([127, 0, 0, 1], 40000), ([127, 0, 0, 1], 8080));
    let mut msg = testing::HostSkMsg::tcp(a, b, 10);
    testing::run_sk_msg(to_slot_one, &mut msg);
    assert_eq!(msg.redirected(), None, "slot 1 is empty");
    // Port 40001 is odd: slot 1; the socket number is its cookie's low 32 bits.
    let mut established =
        testing::HostSockOps::tcp(duet::sock::op::ACTIVE_ESTABLISHED_CB, (a.0, 40001), b, 0x5_0000_0007);
    testing::run_sock_ops(file_in_slot, &mut established);
    let mut msg = testing::HostSkMsg::tcp(a, b, 10);
    testing::run_sk_msg(to_slot_one, &mut msg);
    assert_eq!(msg.redirected(), Some((7, duet::sock::BPF_F_INGRESS)));
    SOCKS.remove(1).unwrap();
    let mut msg = testing::HostSkMsg::tcp(a, b, 10);
    testing::run_sk_msg(to_slot_one, &mut msg);
    assert_eq!(msg.redirected(), None, "emptied");
}
