//! The `struct __sk_buff` hooks, as every engine names them.

/// The skb program types duet runs, by where they sit in the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkbHook {
    /// A socket filter (`BPF_PROG_TYPE_SOCKET_FILTER`): `data` at the network header, packet
    /// read-only, no direct packet access. Returns how many bytes to keep.
    SocketFilter,
    /// A TC classifier (`BPF_PROG_TYPE_SCHED_CLS`): `data` at the Ethernet header, packet
    /// writable. Returns a TC action.
    Classifier,
    /// A cgroup skb program (`BPF_PROG_TYPE_CGROUP_SKB`): `data` at the network header, packet
    /// read-only. Returns 0 (drop) or 1 (pass).
    CgroupSkb,
}

/// Length of an Ethernet header (`ETH_HLEN`).
pub const ETH_HLEN: usize = 14;

impl SkbHook {
    /// Where `data` starts in an Ethernet frame of `len` bytes.
    pub fn data_offset(self, len: usize) -> usize {
        match self {
            SkbHook::Classifier => 0,
            SkbHook::SocketFilter | SkbHook::CgroupSkb => len.min(ETH_HLEN),
        }
    }

    /// Whether programs of this hook may change the packet.
    pub fn packet_writable(self) -> bool {
        self == SkbHook::Classifier
    }
}
