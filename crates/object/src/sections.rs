//! Program section names: which program type each name means (libbpf's naming rules, plus
//! duet's own `duet/*` sections), and the private copy of an object that aya-obj parses.
//!
//! aya-obj knows fewer section names than libbpf (no `tc`, `tcx/ingress`, `netkit/primary`,
//! legacy `xdp_*`, `struct_ops`, ...) and refuses the whole object on the first name it does not
//! know. duet decides every program's kind itself, from the real name, and hands aya-obj a copy
//! in which each name it would refuse is overwritten in place by a unique name of the same
//! length that it accepts (`tp/...`), and each section duet refuses is no longer executable, so
//! aya-obj skips it. Same-length, in-place edits move no offset, so the rest of the file stays
//! valid.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use crate::ProgramKind;

mod btf_ext;

/// How a table entry matches a section name.
#[derive(Clone, Copy)]
enum Match {
    /// The name is exactly the entry.
    Exact,
    /// The name is the entry, or the entry followed by `/` and anything (libbpf's `type+`).
    Plus,
    /// The name starts with the entry: the names libbpf accepted before 1.0 (`xdp_prog`,
    /// `classifier_ingress`, `socket1`), still common in older objects and in iproute2's.
    Legacy,
}

use Match::{Exact, Legacy, Plus};

/// The program types duet has no kind of its own for, by the kernel's name (`BPF_PROG_TYPE_*`
/// in lower case); they become [`ProgramKind::Other`].
const fn other(kernel_type: &'static str) -> Kind {
    Kind::Other(kernel_type)
}

/// A table entry's kind (`ProgramKind` is not `const`-constructible with a `String`).
#[derive(Clone, Copy)]
enum Kind {
    Xdp,
    SocketFilter,
    SchedClassifier,
    CgroupSkb,
    KProbe,
    KRetProbe,
    TracePoint,
    SockOps,
    SkMsg,
    SkLookup,
    CgroupSockAddr,
    Other(&'static str),
}

/// The section names libbpf accepts (its documented table of program types and ELF sections),
/// in the order they are tried: exact and `type+` entries first, then the legacy prefixes.
const SECTIONS: &[(&str, Match, Kind)] = &[
    ("socket", Exact, Kind::SocketFilter),
    ("sk_reuseport/migrate", Exact, other("sk_reuseport")),
    ("sk_reuseport", Exact, other("sk_reuseport")),
    ("kprobe", Plus, Kind::KProbe),
    ("uprobe", Plus, Kind::KProbe),
    ("uprobe.s", Plus, Kind::KProbe),
    ("kretprobe", Plus, Kind::KRetProbe),
    ("uretprobe", Plus, Kind::KRetProbe),
    ("uretprobe.s", Plus, Kind::KRetProbe),
    ("kprobe.multi", Plus, Kind::KProbe),
    ("kretprobe.multi", Plus, Kind::KRetProbe),
    ("kprobe.session", Plus, Kind::KProbe),
    ("uprobe.multi", Plus, Kind::KProbe),
    ("uretprobe.multi", Plus, Kind::KRetProbe),
    ("uprobe.multi.s", Plus, Kind::KProbe),
    ("uretprobe.multi.s", Plus, Kind::KRetProbe),
    ("uprobe.session", Plus, Kind::KProbe),
    ("uprobe.session.s", Plus, Kind::KProbe),
    ("ksyscall", Plus, Kind::KProbe),
    ("kretsyscall", Plus, Kind::KRetProbe),
    ("usdt", Plus, Kind::KProbe),
    ("usdt.s", Plus, Kind::KProbe),
    ("tc/ingress", Exact, Kind::SchedClassifier),
    ("tc/egress", Exact, Kind::SchedClassifier),
    ("tcx/ingress", Exact, Kind::SchedClassifier),
    ("tcx/egress", Exact, Kind::SchedClassifier),
    ("tc", Plus, Kind::SchedClassifier),
    ("classifier", Plus, Kind::SchedClassifier),
    ("action", Plus, other("sched_act")),
    ("netkit/primary", Exact, Kind::SchedClassifier),
    ("netkit/peer", Exact, Kind::SchedClassifier),
    ("tracepoint", Plus, Kind::TracePoint),
    ("tp", Plus, Kind::TracePoint),
    ("raw_tracepoint", Plus, other("raw_tracepoint")),
    ("raw_tp", Plus, other("raw_tracepoint")),
    ("raw_tracepoint.w", Plus, other("raw_tracepoint_writable")),
    ("raw_tp.w", Plus, other("raw_tracepoint_writable")),
    ("tp_btf", Plus, other("tracing")),
    ("fentry", Plus, other("tracing")),
    ("fmod_ret", Plus, other("tracing")),
    ("fexit", Plus, other("tracing")),
    ("fentry.s", Plus, other("tracing")),
    ("fmod_ret.s", Plus, other("tracing")),
    ("fexit.s", Plus, other("tracing")),
    ("freplace", Plus, other("ext")),
    ("lsm", Plus, other("lsm")),
    ("lsm.s", Plus, other("lsm")),
    ("lsm_cgroup", Plus, other("lsm")),
    ("iter", Plus, other("tracing")),
    ("iter.s", Plus, other("tracing")),
    ("syscall", Exact, other("syscall")),
    ("xdp.frags/devmap", Exact, Kind::Xdp),
    ("xdp/devmap", Exact, Kind::Xdp),
    ("xdp.frags/cpumap", Exact, Kind::Xdp),
    ("xdp/cpumap", Exact, Kind::Xdp),
    ("xdp.frags", Exact, Kind::Xdp),
    ("xdp", Exact, Kind::Xdp),
    ("perf_event", Exact, other("perf_event")),
    ("lwt_in", Exact, other("lwt_in")),
    ("lwt_out", Exact, other("lwt_out")),
    ("lwt_xmit", Exact, other("lwt_xmit")),
    ("lwt_seg6local", Exact, other("lwt_seg6local")),
    ("sockops", Exact, Kind::SockOps),
    ("sk_skb/stream_parser", Exact, other("sk_skb")),
    ("sk_skb/stream_verdict", Exact, other("sk_skb")),
    ("sk_skb/verdict", Exact, other("sk_skb")),
    ("sk_skb", Exact, other("sk_skb")),
    ("sk_msg", Exact, Kind::SkMsg),
    ("lirc_mode2", Exact, other("lirc_mode2")),
    ("flow_dissector", Exact, other("flow_dissector")),
    ("cgroup_skb/ingress", Exact, Kind::CgroupSkb),
    ("cgroup_skb/egress", Exact, Kind::CgroupSkb),
    ("cgroup/skb", Exact, Kind::CgroupSkb),
    ("cgroup/sock_create", Exact, other("cgroup_sock")),
    ("cgroup/sock_release", Exact, other("cgroup_sock")),
    ("cgroup/sock", Exact, other("cgroup_sock")),
    ("cgroup/post_bind4", Exact, other("cgroup_sock")),
    ("cgroup/post_bind6", Exact, other("cgroup_sock")),
    ("cgroup/bind4", Exact, Kind::CgroupSockAddr),
    ("cgroup/bind6", Exact, Kind::CgroupSockAddr),
    ("cgroup/connect4", Exact, Kind::CgroupSockAddr),
    ("cgroup/connect6", Exact, Kind::CgroupSockAddr),
    ("cgroup/connect_unix", Exact, Kind::CgroupSockAddr),
    ("cgroup/sendmsg4", Exact, Kind::CgroupSockAddr),
    ("cgroup/sendmsg6", Exact, Kind::CgroupSockAddr),
    ("cgroup/sendmsg_unix", Exact, Kind::CgroupSockAddr),
    ("cgroup/recvmsg4", Exact, Kind::CgroupSockAddr),
    ("cgroup/recvmsg6", Exact, Kind::CgroupSockAddr),
    ("cgroup/recvmsg_unix", Exact, Kind::CgroupSockAddr),
    ("cgroup/getpeername4", Exact, Kind::CgroupSockAddr),
    ("cgroup/getpeername6", Exact, Kind::CgroupSockAddr),
    ("cgroup/getpeername_unix", Exact, Kind::CgroupSockAddr),
    ("cgroup/getsockname4", Exact, Kind::CgroupSockAddr),
    ("cgroup/getsockname6", Exact, Kind::CgroupSockAddr),
    ("cgroup/getsockname_unix", Exact, Kind::CgroupSockAddr),
    ("cgroup/sysctl", Exact, other("cgroup_sysctl")),
    ("cgroup/getsockopt", Exact, other("cgroup_sockopt")),
    ("cgroup/setsockopt", Exact, other("cgroup_sockopt")),
    ("cgroup/dev", Exact, other("cgroup_device")),
    ("struct_ops", Plus, other("struct_ops")),
    ("struct_ops.s", Plus, other("struct_ops")),
    ("sk_lookup", Exact, Kind::SkLookup),
    ("netfilter", Exact, other("netfilter")),
    // The names libbpf accepted by prefix before version 1.0.
    ("xdp", Legacy, Kind::Xdp),
    ("classifier", Legacy, Kind::SchedClassifier),
    ("socket", Legacy, Kind::SocketFilter),
    ("action", Legacy, other("sched_act")),
    ("cgroup_skb/", Legacy, Kind::CgroupSkb),
    ("sockops", Legacy, Kind::SockOps),
    ("sk_msg", Legacy, Kind::SkMsg),
    ("perf_event", Legacy, other("perf_event")),
    ("flow_dissector", Legacy, other("flow_dissector")),
];

/// The program kind a section name gives: duet's own `duet/*` sections, then libbpf's names.
/// `None` for a name no loader gives a meaning (libbpf refuses the program too).
pub fn section_kind(name: &str) -> Option<ProgramKind> {
    if let Some(kind) = crate::duet_section_kind(name.as_bytes()) {
        return Some(kind);
    }
    let (_, _, kind) = SECTIONS.iter().find(|(entry, how, _)| match how {
        Exact => name == *entry,
        Plus => name.strip_prefix(entry).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
        Legacy => name.starts_with(entry),
    })?;
    Some(match kind {
        Kind::Xdp => ProgramKind::Xdp,
        Kind::SocketFilter => ProgramKind::SocketFilter,
        Kind::SchedClassifier => ProgramKind::SchedClassifier,
        Kind::CgroupSkb => ProgramKind::CgroupSkb,
        Kind::KProbe => ProgramKind::KProbe,
        Kind::KRetProbe => ProgramKind::KRetProbe,
        Kind::TracePoint => ProgramKind::TracePoint,
        Kind::SockOps => ProgramKind::SockOps,
        Kind::SkMsg => ProgramKind::SkMsg,
        Kind::SkLookup => ProgramKind::SkLookup,
        Kind::CgroupSockAddr => ProgramKind::CgroupSockAddr,
        Kind::Other(name) => ProgramKind::Other((*name).to_owned()),
    })
}

/// One program section of an object file.
#[derive(Clone, Debug)]
pub(crate) struct ProgramSection {
    /// Its section header index.
    pub index: usize,
    /// Its name.
    pub name: String,
    /// What its name means; `None` for a name no loader knows.
    pub kind: Option<ProgramKind>,
    /// The functions defined in it (the programs it holds).
    pub functions: Vec<String>,
}

/// Name prefixes aya-obj reads as something other than a program (maps, data, `.text`, ...).
const NOT_PROGRAM_PREFIXES: [&str; 9] =
    ["license", "version", "maps", ".maps", ".text", ".bss", ".data", ".rodata", ".BTF"];

/// The program sections of an object file, as aya-obj finds them: executable sections with
/// contents that are not `.text` or another section of its own.
pub(crate) fn program_sections(bytes: &[u8]) -> Vec<ProgramSection> {
    use object::{Object as _, ObjectSection as _, ObjectSymbol as _, SymbolKind, SymbolSection};
    let Ok(file) = object::File::parse(bytes) else { return Vec::new() };
    let mut out: Vec<ProgramSection> = file
        .sections()
        .filter(|s| s.kind() == object::SectionKind::Text && s.size() > 0)
        .filter_map(|s| {
            let name = s.name().ok()?;
            (!NOT_PROGRAM_PREFIXES.iter().any(|p| name.starts_with(p))).then(|| ProgramSection {
                index: s.index().0,
                name: name.to_owned(),
                kind: section_kind(name),
                functions: Vec::new(),
            })
        })
        .collect();
    for sym in file.symbols().filter(|s| s.kind() == SymbolKind::Text) {
        let (SymbolSection::Section(index), Ok(name)) = (sym.section(), sym.name()) else { continue };
        if let Some(section) = out.iter_mut().find(|s| s.index == index.0)
            && !name.is_empty()
        {
            section.functions.push(name.to_owned());
        }
    }
    out
}

/// Whether aya-obj accepts a program section name.
fn aya_accepts(name: &str) -> bool {
    aya_obj::ProgramSection::from_str(name).is_ok()
}

/// The copy of `bytes` aya-obj parses: every section in `disabled` made non-executable (aya-obj
/// then skips it), and every other program section whose name aya-obj refuses renamed to a
/// unique same-length name it accepts: appended to the section-name table for the section, and
/// in place in the BTF string table (where `.BTF.ext` names the section its function and line
/// info belong to). Returns the
/// sections that could not be given such a name (a one-byte name, or no unique name left);
/// the caller refuses them. Without anything to change, `bytes` is returned as it is.
pub(crate) fn aya_copy<'a>(
    bytes: &'a [u8],
    sections: &[ProgramSection],
    disabled: &BTreeSet<usize>,
) -> (Cow<'a, [u8]>, Vec<usize>) {
    use object::read::elf::{FileHeader as _, SectionHeader as _};
    let unchanged = |unnamed| (Cow::Borrowed(bytes), unnamed);
    let to_rename: Vec<&ProgramSection> =
        sections.iter().filter(|s| !disabled.contains(&s.index) && !aya_accepts(&s.name)).collect();
    if to_rename.is_empty() && disabled.is_empty() {
        return unchanged(Vec::new());
    }
    let Ok(header) = object::elf::FileHeader64::<object::Endianness>::parse(bytes) else {
        return unchanged(Vec::new());
    };
    let Ok(endian) = header.endian() else { return unchanged(Vec::new()) };
    let (Ok(headers), Ok(shstrndx)) = (header.section_headers(endian, bytes), header.shstrndx(endian, bytes)) else {
        return unchanged(Vec::new());
    };
    let range = |index: usize| -> Option<std::ops::Range<usize>> {
        let s = headers.get(index)?;
        let start = usize::try_from(s.sh_offset(endian)).ok()?;
        let end = start.checked_add(usize::try_from(s.sh_size(endian)).ok()?)?;
        (end <= bytes.len()).then_some(start..end)
    };
    let Some(names) = range(shstrndx as usize) else { return unchanged(Vec::new()) };
    let name_offset = |index: usize| -> Option<usize> {
        let at = names.start.checked_add(headers.get(index)?.sh_name(endian) as usize)?;
        (at < names.end).then_some(at)
    };

    let mut copy = bytes.to_vec();
    let headers_at = HeaderTable::of(header, endian);
    for &index in disabled {
        headers_at.clear_exec(&mut copy, index);
    }

    // Renamed sections: original name -> alias.
    let mut taken: BTreeSet<String> = sections.iter().map(|s| s.name.clone()).collect();
    let mut aliases: BTreeMap<String, String> = BTreeMap::new();
    let mut unnamed = Vec::new();
    for s in to_rename {
        if aliases.contains_key(&s.name) {
            continue;
        }
        let Some(alias) = unique_alias(&s.name, &taken) else {
            unnamed.push(s.index);
            continue;
        };
        taken.insert(alias.clone());
        aliases.insert(s.name.clone(), alias);
    }
    // The aliases go into a new section-name table, not over the old names (see
    // `HeaderTable::rename_sections`).
    let renamed: Vec<(usize, &str)> =
        sections.iter().filter_map(|s| Some((s.index, aliases.get(&s.name)?.as_str()))).collect();
    if !renamed.is_empty() {
        headers_at.rename_sections(&mut copy, &bytes[names.clone()], shstrndx as usize, &renamed);
    }
    // The BTF string table: every string equal to a renamed section's name.
    let btf = (1..headers.len()).find(|&i| name_offset(i).and_then(|at| bytes.get(at..at + 5)) == Some(b".BTF\0"));
    if let Some(btf) = btf.and_then(range)
        && let Some(strings) = crate::btf_string_range(&bytes[btf.clone()])
    {
        let table = btf.start + strings.start..btf.start + strings.end;
        let mut start = table.start;
        while start < table.end {
            let len = bytes[start..table.end].iter().position(|b| *b == 0).unwrap_or(table.end - start);
            if let Ok(text) = std::str::from_utf8(&bytes[start..start + len])
                && let Some(alias) = aliases.get(text)
            {
                copy[start..start + len].copy_from_slice(alias.as_bytes());
            }
            start += len + 1;
        }
    }
    (Cow::Owned(copy), unnamed)
}

/// A name of `name`'s length that aya-obj reads as a program section and no other section has:
/// `tp/` followed by the rest of the name, or by a counter when that is taken.
fn unique_alias(name: &str, taken: &BTreeSet<String>) -> Option<String> {
    let len = name.len();
    if len == 2 {
        return (!taken.contains("tp")).then(|| "tp".to_owned());
    }
    if len < 3 {
        return None;
    }
    let tail = name.get(3..).filter(|t| !t.contains('\0'));
    let first = tail.map(|t| format!("tp/{t}"));
    let counters = (0u32..1000).map(|n| format!("tp/{n:_>width$}", width = len - 3)).filter(|a| a.len() == len);
    first.into_iter().chain(counters).find(|a| !taken.contains(a) && aya_accepts(a))
}

/// Where the section headers are in the file, to edit them in a copy.
struct HeaderTable {
    offset: usize,
    entry_size: usize,
    endian: object::Endianness,
}

impl HeaderTable {
    fn of(header: &object::elf::FileHeader64<object::Endianness>, endian: object::Endianness) -> HeaderTable {
        HeaderTable {
            offset: header.e_shoff.get(endian) as usize,
            entry_size: usize::from(header.e_shentsize.get(endian)),
            endian,
        }
    }

    /// The file range of a field of header `index` (`Elf64_Shdr`: sh_name at 0 (4 bytes),
    /// sh_flags at 8, sh_offset at 24, sh_size at 32 (8 bytes each)).
    fn field(&self, index: usize, at: usize, len: usize) -> Option<std::ops::Range<usize>> {
        let start = index.checked_mul(self.entry_size)?.checked_add(self.offset)?.checked_add(at)?;
        Some(start..start.checked_add(len)?)
    }

    fn read(&self, copy: &[u8], index: usize, at: usize, len: usize) -> Option<u64> {
        let bytes = copy.get(self.field(index, at, len)?)?;
        let mut word = [0u8; 8];
        match self.endian {
            object::Endianness::Little => {
                word[..len].copy_from_slice(bytes);
                Some(u64::from_le_bytes(word))
            }
            object::Endianness::Big => {
                word[8 - len..].copy_from_slice(bytes);
                Some(u64::from_be_bytes(word))
            }
        }
    }

    fn write(&self, copy: &mut [u8], index: usize, at: usize, len: usize, value: u64) {
        let Some(dst) = self.field(index, at, len).and_then(|r| copy.get_mut(r)) else { return };
        match self.endian {
            object::Endianness::Little => dst.copy_from_slice(&value.to_le_bytes()[..len]),
            object::Endianness::Big => dst.copy_from_slice(&value.to_be_bytes()[8 - len..]),
        }
    }

    /// Renames sections (`(index, new name)`) in `copy`: a new section-name table, the old one
    /// (`names`, of section `shstrndx`) followed by the new names, goes at the end of the file,
    /// and the renamed sections point into its new part. The old names are never overwritten:
    /// the linker shares the table with symbol names and stores a name that ends another once
    /// (section `tc` inside function `sum_tc`).
    fn rename_sections(&self, copy: &mut Vec<u8>, names: &[u8], shstrndx: usize, renamed: &[(usize, &str)]) {
        let mut strings = names.to_vec();
        for (index, alias) in renamed {
            self.write(copy, *index, 0, 4, strings.len() as u64);
            strings.extend_from_slice(alias.as_bytes());
            strings.push(0);
        }
        let at = copy.len() as u64;
        copy.extend_from_slice(&strings);
        self.write(copy, shstrndx, 24, 8, at);
        self.write(copy, shstrndx, 32, 8, strings.len() as u64);
    }

    /// Clears SHF_EXECINSTR of section `index`: loaders no longer read it as a program.
    fn clear_exec(&self, copy: &mut [u8], index: usize) {
        if let Some(flags) = self.read(copy, index, 8, 8) {
            self.write(copy, index, 8, 8, flags & !u64::from(object::elf::SHF_EXECINSTR));
        }
    }
}

/// An object prepared for duet's kernel loader (aya), from [`kernel_object`].
#[derive(Clone, Debug)]
pub struct KernelObject<'a> {
    /// The bytes to hand to aya: the object itself when nothing had to change.
    pub bytes: Cow<'a, [u8]>,
    /// The programs left out, and why.
    pub refused: Vec<crate::RefusedProgram>,
}

/// Prepares an object for duet's kernel loader, aya 0.14, which knows fewer section names than
/// libbpf and refuses a whole object on the first name it does not know. In the copy it gets,
/// each program section whose name libbpf accepts but aya does not is renamed to a name aya
/// loads as the same program type (`tc` becomes `classifier/tc`, a legacy `xdp_foo` becomes
/// `xdp`); a section whose name no loader knows, or whose type aya cannot load under any name,
/// is left out (no longer executable) and its programs are returned as refused. The new names
/// are appended to the file in a new section-name table, so nothing else moves. BTF function and
/// line info stay attached to the old names: renamed programs load without them. duet's own
/// userspace-only sections are left as they are (the kernel loader refuses them by name).
pub fn kernel_object(bytes: &[u8]) -> KernelObject<'_> {
    use object::read::elf::{FileHeader as _, SectionHeader as _};
    let unchanged = || KernelObject { bytes: Cow::Borrowed(bytes), refused: Vec::new() };
    let sections = program_sections(bytes);
    // What duet-object refuses (unknown name, invalid code, a failed relocation) is left out
    // of the kernel's copy too, so that aya does not fail the whole object on it.
    let duet_refused: Vec<crate::RefusedProgram> =
        crate::Object::parse_each(bytes).map(|parsed| parsed.refused).unwrap_or_default();
    let mut taken: BTreeSet<String> = sections.iter().map(|s| s.name.clone()).collect();
    let mut refused = Vec::new();
    let mut disabled = Vec::new();
    let mut renames: Vec<(usize, String)> = Vec::new();
    for s in &sections {
        let reason = if let Some(r) = duet_refused.iter().find(|r| r.section == s.name) {
            if s.functions.len() > 1 { format!("`{}` of its section: {}", r.name, r.reason) } else { r.reason.clone() }
        } else if aya_accepts(&s.name) {
            continue;
        } else {
            match &s.kind {
                None => format!("unknown section name `{}`: libbpf gives it no program type", s.name),
                Some(kind) if kind.is_userspace_only() => continue,
                Some(kind) => match kernel_alias(kind, &s.name, &taken) {
                    Ok(alias) => {
                        taken.insert(alias.clone());
                        renames.push((s.index, alias));
                        continue;
                    }
                    Err(why) => format!(
                        "duet's kernel loader (aya 0.14) cannot load this {} program from section `{}`: {why}",
                        kind_label(kind),
                        s.name
                    ),
                },
            }
        };
        crate::refuse_section(&mut refused, s, &reason);
        disabled.push(s.index);
    }
    if renames.is_empty() && disabled.is_empty() {
        return unchanged();
    }
    let Ok(header) = object::elf::FileHeader64::<object::Endianness>::parse(bytes) else { return unchanged() };
    let Ok(endian) = header.endian() else { return unchanged() };
    let (Ok(headers), Ok(shstrndx)) = (header.section_headers(endian, bytes), header.shstrndx(endian, bytes)) else {
        return unchanged();
    };
    let Some(names) = headers.get(shstrndx as usize).and_then(|h| {
        let start = usize::try_from(h.sh_offset(endian)).ok()?;
        bytes.get(start..start.checked_add(usize::try_from(h.sh_size(endian)).ok()?)?)
    }) else {
        return unchanged();
    };
    let table = HeaderTable::of(header, endian);
    let mut copy = bytes.to_vec();
    for index in disabled {
        table.clear_exec(&mut copy, index);
    }
    if !renames.is_empty() {
        let renamed: Vec<(usize, &str)> = renames.iter().map(|(index, alias)| (*index, alias.as_str())).collect();
        table.rename_sections(&mut copy, names, shstrndx as usize, &renamed);
        // BTF.ext names the sections its function and line records belong to: they follow the
        // rename, or the loader finds none for a renamed program and the kernel refuses the
        // records of its callees ("nonzero insn_off ... for the first func info record").
        let section_name = |index: usize| {
            let h = headers.get(index)?;
            let start = usize::try_from(h.sh_name(endian)).ok()?;
            let rest = names.get(start..)?;
            rest.get(..rest.iter().position(|&b| b == 0)?)
        };
        let btf = (0..headers.len()).find(|&i| section_name(i) == Some(b".BTF".as_slice()));
        let ext = (0..headers.len()).find(|&i| section_name(i) == Some(b".BTF.ext".as_slice()));
        if let (Some(btf), Some(ext)) = (btf, ext) {
            let pairs: Vec<(&str, &str)> = renames
                .iter()
                .filter_map(|(index, alias)| {
                    let old = sections.iter().find(|s| s.index == *index)?;
                    Some((old.name.as_str(), alias.as_str()))
                })
                .collect();
            btf_ext::rename_sections(&mut copy, &table, btf, ext, &pairs);
        }
    }
    refused.sort_by(|a, b| a.name.cmp(&b.name));
    KernelObject { bytes: Cow::Owned(copy), refused }
}

/// A kind's name in messages (the kernel's program type where duet has no kind of its own).
fn kind_label(kind: &ProgramKind) -> String {
    match kind {
        ProgramKind::Other(name) => name.clone(),
        other => format!("{other:?}"),
    }
}

/// A section name aya loads as the same program type as `name`, that no other section has; or
/// why there is none.
fn kernel_alias(kind: &ProgramKind, name: &str, taken: &BTreeSet<String>) -> Result<String, String> {
    let candidate = match kind {
        ProgramKind::SchedClassifier => format!("classifier/{name}"),
        ProgramKind::SocketFilter => format!("socket/{name}"),
        ProgramKind::KProbe => format!("kprobe/{name}"),
        ProgramKind::KRetProbe => format!("kretprobe/{name}"),
        ProgramKind::TracePoint => format!("tracepoint/{name}"),
        ProgramKind::SockOps => format!("sockops/{name}"),
        ProgramKind::SkMsg => format!("sk_msg/{name}"),
        // aya knows no suffix for these: one section per object can have the plain name.
        ProgramKind::SkLookup => "sk_lookup".to_owned(),
        ProgramKind::Xdp if name.starts_with("xdp.frags") => "xdp.frags".to_owned(),
        ProgramKind::Xdp => "xdp".to_owned(),
        ProgramKind::CgroupSkb => "cgroup/skb".to_owned(),
        ProgramKind::Other(other) => match other.as_str() {
            "raw_tracepoint" => format!("raw_tp/{name}"),
            "perf_event" | "flow_dissector" | "lirc_mode2" => other.clone(),
            _ => return Err("aya has no section name for this program type (or attach type)".to_owned()),
        },
        _ => return Err("aya has no section name for this attach type".to_owned()),
    };
    if taken.contains(&candidate) {
        return Err(format!(
            "aya loads it only as section `{candidate}`, which the object already has; put it in that section \
             (SEC(\"{candidate}\"), libbpf 1.x: several programs may share a section)"
        ));
    }
    if !aya_accepts(&candidate) {
        return Err("aya has no section name for it".to_owned());
    }
    Ok(candidate)
}
