//! # duet-object — ELF eBPF objects
//!
//! **API boundary.** Turns the bytes of a `.bpf.o` (from clang `-target bpf` or rustc +
//! bpf-linker) into programs ready for duet's engines: each program linked with the `.text`
//! subprograms it calls, every map reference rewritten to an index into [`Object::maps`], global
//! data (`.data`, `.rodata*`, `.bss`) turned into array maps, and BTF line info kept for
//! diagnostics.
//!
//! Parsing and relocation are done by `aya-obj`, the parser the aya loader uses for the kernel,
//! so the userspace VM and the kernel loader read an object the same way. This crate adds what
//! duet needs on top: validated [`duet_isa::Program`]s, map references by index, section names,
//! a relocation listing and source lines.
//!
//! Map references in the programs use the kernel's pseudo sources: `lddw rX, map_fd N` means
//! map `N` of [`Object::maps`], and `lddw rX, map_value N, OFF` means byte `OFF` of map `N`'s
//! single value (global data). No I/O happens here; callers read the file.
//!
//! A program's kind comes from its real section name: every name libbpf accepts
//! ([`section_kind`], `sections.rs`) and duet's own userspace-only sections (`duet/http_request`,
//! `duet/http_response`, `duet/route`, docs/ABI.md version 2). aya-obj parses a copy in which
//! the names it refuses are rewritten to same-length names it accepts. Programs are prepared one
//! by one ([`Object::parse_each`]): one with an unknown section name, undecodable code or a
//! failed relocation is refused with its reason, and the others are unaffected.
#![forbid(unsafe_code)]

pub mod btf_types;
pub mod map_order;
mod sections;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

pub use btf_types::{Bitfield, EnumVariant, Member, TypeLayout};
pub use sections::{KernelObject, kernel_object, section_kind};

use aya_obj::btf::Btf;
use aya_obj::{EbpfSectionKind, ProgramSection};
use duet_isa::{DecodeError, Program, RawInsn};

/// Kernel map type numbers duet names in listings.
const MAP_TYPE_NAMES: &[(u32, &str)] = &[
    (1, "hash"),
    (2, "array"),
    (3, "prog_array"),
    (4, "perf_event_array"),
    (5, "percpu_hash"),
    (6, "percpu_array"),
    (7, "stack_trace"),
    (8, "cgroup_array"),
    (9, "lru_hash"),
    (10, "lru_percpu_hash"),
    (11, "lpm_trie"),
    (12, "array_of_maps"),
    (13, "hash_of_maps"),
    (14, "devmap"),
    (15, "sockmap"),
    (16, "cpumap"),
    (17, "xskmap"),
    (18, "sockhash"),
    (27, "ringbuf"),
];

/// The kernel's name for a map type number (`"hash"`, `"array"`, ...), or `"type N"`.
pub fn map_type_name(map_type: u32) -> String {
    MAP_TYPE_NAMES
        .iter()
        .find(|(t, _)| *t == map_type)
        .map(|(_, n)| (*n).to_owned())
        .unwrap_or_else(|| format!("type {map_type}"))
}

/// What kind of program a section holds (its hook).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProgramKind {
    /// `xdp`: packet in, verdict out.
    Xdp,
    /// `socket`: socket filter.
    SocketFilter,
    /// `tc` / `classifier`.
    SchedClassifier,
    /// `cgroup_skb/ingress`, `cgroup_skb/egress`, `cgroup/skb`: packets of a cgroup's sockets.
    CgroupSkb,
    /// `kprobe/...`.
    KProbe,
    /// `kretprobe/...`.
    KRetProbe,
    /// `tracepoint/...` / `tp/...`.
    TracePoint,
    /// `sockops`.
    SockOps,
    /// `sk_msg`.
    SkMsg,
    /// `sk_lookup`: the socket lookup of packets arriving in a network namespace.
    SkLookup,
    /// `cgroup/connect4` and other socket-address hooks.
    CgroupSockAddr,
    /// `duet/http_request`: a userspace-only HTTP request filter (docs/ABI.md, version 2).
    HttpRequest,
    /// `duet/http_response`: a userspace-only HTTP response filter.
    HttpResponse,
    /// `duet/route`: a userspace-only route program (chooses a cluster and endpoint).
    Route,
    /// Any other program type libbpf's section names give (`raw_tracepoint`, `perf_event`,
    /// `lsm`, `tracing`, `sk_skb`, ...): the kernel's name of the type, `BPF_PROG_TYPE_*` in
    /// lower case. duet neither verifies nor runs these.
    Other(String),
}

impl ProgramKind {
    /// Whether the program runs only in duet's userspace executors (the HTTP program types of
    /// ABI version 2); the kernel has no such hook.
    pub fn is_userspace_only(&self) -> bool {
        matches!(self, ProgramKind::HttpRequest | ProgramKind::HttpResponse | ProgramKind::Route)
    }

    /// Whether the program acts on a socket inside a kernel system call or socket lookup
    /// (`cgroup/connect4` and the other sock_addr hooks, `sockops`, `sk_msg`, `sk_lookup`): no
    /// userspace executor gives it a meaning and duet's verifier does not model it, so the
    /// kernel's verifier is its only check.
    pub fn is_kernel_only(&self) -> bool {
        matches!(self, ProgramKind::SockOps | ProgramKind::SkMsg | ProgramKind::SkLookup | ProgramKind::CgroupSockAddr)
    }
}

/// duet's own program sections (userspace only), the kind each holds, and its prefix.
/// A section is one of them when its name is the base or the base followed by `/anything`.
const DUET_SECTIONS: [(&str, ProgramKind); 3] = [
    ("duet/http_request", ProgramKind::HttpRequest),
    ("duet/http_response", ProgramKind::HttpResponse),
    ("duet/route", ProgramKind::Route),
];

/// The kind of duet's own section `name`, if it is one.
fn duet_section_kind(name: &[u8]) -> Option<ProgramKind> {
    DUET_SECTIONS.iter().find_map(|(base, kind)| {
        let rest = name.strip_prefix(base.as_bytes())?;
        (rest.is_empty() || rest.starts_with(b"/")).then(|| kind.clone())
    })
}

/// Where a map was declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapOrigin {
    /// A BTF-defined map in `.maps`.
    BtfMaps,
    /// A legacy `struct bpf_map_def` in `maps`.
    Legacy,
    /// Global data: `.data*`.
    Data,
    /// Read-only global data: `.rodata*`.
    Rodata,
    /// Zero-initialised global data: `.bss*`.
    Bss,
}

/// A map definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapDef {
    /// The map's symbol name, or the section name (`.data`, `.rodata`, `.bss`) for global data.
    pub name: String,
    /// Kernel map type number (`BPF_MAP_TYPE_*`).
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// `BPF_F_*` creation flags.
    pub flags: u32,
    /// Initial contents of the single value (global data), if any.
    pub initial_data: Option<Vec<u8>>,
    /// Where it was declared.
    pub origin: MapOrigin,
    /// The key's type from the object's BTF: only for BTF-defined maps whose declared key type
    /// is exactly [`key_size`](Self::key_size) bytes.
    pub key_type: Option<Arc<TypeLayout>>,
    /// The value's type from the object's BTF, under the same conditions.
    pub value_type: Option<Arc<TypeLayout>>,
    /// For a map of maps (array or hash of maps): the inner map's definition, from the object's
    /// BTF (`__array(values, struct inner)`) or legacy `bpf_map_def`, the template every map
    /// stored in it must match; `None` otherwise or when the object gives none.
    pub inner: Option<Box<MapDef>>,
}

/// A BTF line-info record: which source line produced an instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineInfo {
    /// Instruction (slot) index in the linked program.
    pub insn: usize,
    /// Source file name.
    pub file: String,
    /// The source line's text, as recorded by the compiler.
    pub source: String,
    /// 1-based line number.
    pub line: u32,
    /// Column.
    pub column: u32,
}

/// One map reference of a program: an `lddw` pseudo map load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapReference {
    /// Slot index of the `lddw`.
    pub insn: usize,
    /// Index into [`Object::maps`]; [`UNBOUND_MAP`] when no relocation bound the reference.
    pub map: usize,
    /// Byte offset into the value, for global data references.
    pub offset: Option<u32>,
    /// For a load no relocation bound (a raw pseudo map load written without a symbol, as
    /// inline assembly can): the file descriptor its bytecode names. duet binds it to no map,
    /// and the kernel refuses it ("fd N is not pointing to valid bpf_map").
    pub unbound_fd: Option<i32>,
}

/// The map index an unbound `lddw` pseudo map load carries in its immediate: no map has it, so
/// the reference cannot reach any map of the object (see [`MapReference::unbound_fd`]).
pub const UNBOUND_MAP: u32 = u32::MAX;

/// `lddw` (`BPF_LD | BPF_DW | BPF_IMM`).
const LDDW: u8 = 0x18;
/// Pseudo sources that name a map: map_fd (1), map_value (2), map_idx (5), map_idx_value (6).
const MAP_PSEUDO_SRCS: [u8; 4] = [1, 2, 5, 6];
/// Set on the source field of every map pseudo load before relocation; relocation overwrites
/// the field of the loads it binds, so the loads still carrying it were never bound.
const UNBOUND_MARK: u8 = 8;

/// A program, linked and relocated.
#[derive(Clone, Debug)]
pub struct ObjectProgram {
    /// The program's function name.
    pub name: String,
    /// The ELF section it came from (`xdp`, `socket`, `kprobe/sys_open`, ...).
    pub section: String,
    /// Its hook.
    pub kind: ProgramKind,
    /// Instructions, including the subprograms it calls, appended after it.
    pub program: Program,
    /// Map references, in instruction order.
    pub map_refs: Vec<MapReference>,
    /// BTF line info, sorted by instruction (empty without BTF).
    pub line_info: Vec<LineInfo>,
}

impl ObjectProgram {
    /// The source line for the instruction at `slot`: the last line-info record at or before it.
    pub fn line_for(&self, slot: usize) -> Option<&LineInfo> {
        let i = self.line_info.partition_point(|l| l.insn <= slot);
        i.checked_sub(1).map(|i| &self.line_info[i])
    }
}

/// A parsed, linked, relocated object file.
#[derive(Clone, Debug)]
pub struct Object {
    /// The `license` section (`GPL`, ...), empty when absent.
    pub license: String,
    /// Programs, sorted by name.
    pub programs: Vec<ObjectProgram>,
    /// Maps in the order the program declared them where the object records it (SDK objects,
    /// [`map_order`]), then the others by name; program map references index this list.
    pub maps: Vec<MapDef>,
}

/// Why an object could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The bytes are not an ELF eBPF object aya-obj can parse.
    #[error("not a valid eBPF object: {0}")]
    Parse(String),
    /// A map or call relocation could not be applied.
    #[error("relocation failed: {0}")]
    Relocation(String),
    /// A program's linked instructions are not valid eBPF.
    #[error("program `{program}`: {error}")]
    Decode {
        /// The program.
        program: String,
        /// What is wrong with its bytecode (in the message only, so chains print it once).
        error: DecodeError,
    },
    /// The parser failed unexpectedly on this input (reported, never a crash).
    #[error("the object parser failed on this input ({0}); the file is probably corrupt")]
    ParserPanic(String),
    /// The program exists, but could not be prepared (its section name means nothing to
    /// libbpf, its code does not decode, a relocation failed); the object's other programs are
    /// unaffected ([`Object::parse_each`]).
    #[error("program `{program}` (section `{section}`): {reason}")]
    Refused {
        /// The program.
        program: String,
        /// Its section.
        section: String,
        /// Why it could not be prepared.
        reason: String,
    },
    /// No program of this name.
    #[error("no program named `{name}`; the object has: {available}")]
    NoSuchProgram {
        /// The name asked for.
        name: String,
        /// The names present.
        available: String,
    },
}

/// A program of an object that could not be prepared, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedProgram {
    /// The program's function name (the section name when the section defines no function).
    pub name: String,
    /// The ELF section it came from.
    pub section: String,
    /// What its section name means, when it means something.
    pub kind: Option<ProgramKind>,
    /// Why it could not be prepared, in one line.
    pub reason: String,
}

/// An object parsed program by program ([`Object::parse_each`]): the programs that could be
/// prepared, and the others with the reason for each.
#[derive(Clone, Debug)]
pub struct Parsed {
    /// The object with the programs that could be prepared.
    pub object: Object,
    /// The programs that could not, sorted by name.
    pub refused: Vec<RefusedProgram>,
}

impl Parsed {
    /// The program called `name`, or the only program of the object (counting the refused
    /// ones) when `name` is `None`; a refused program is an error saying why.
    pub fn program(&self, name: Option<&str>) -> Result<&ObjectProgram, ObjectError> {
        let wanted = match name {
            Some(name) => Some(name),
            None if self.object.programs.len() + self.refused.len() == 1 => {
                self.object.programs.first().map(|p| p.name.as_str()).or(self.refused.first().map(|r| r.name.as_str()))
            }
            None => None,
        };
        if let Some(r) = self.refused.iter().find(|r| Some(r.name.as_str()) == wanted) {
            return Err(ObjectError::Refused {
                program: r.name.clone(),
                section: r.section.clone(),
                reason: r.reason.clone(),
            });
        }
        self.object.program(wanted).map_err(|err| match err {
            ObjectError::NoSuchProgram { name: asked, .. } => {
                let mut all: Vec<&str> = self.object.programs.iter().map(|p| p.name.as_str()).collect();
                all.extend(self.refused.iter().map(|r| r.name.as_str()));
                all.sort_unstable();
                ObjectError::NoSuchProgram { name: name.map_or(asked, str::to_owned), available: all.join(", ") }
            }
            other => other,
        })
    }
}

/// Runs `f`, turning a panic of the parser into an error.
fn catch_parser_panic<T>(f: impl FnOnce() -> Result<T, ObjectError>) -> Result<T, ObjectError> {
    // aya-obj is not hardened against corrupt input everywhere; a panic there must become an
    // error for the user, never a crash of the CLI or the sidecar.
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(ObjectError::ParserPanic(msg))
        }
    }
}

impl Object {
    /// Parses, links and relocates an ELF eBPF object; any program that cannot be prepared
    /// makes it an error ([`ObjectError::Refused`]). [`Object::parse_each`] keeps the others.
    pub fn parse(bytes: &[u8]) -> Result<Self, ObjectError> {
        let parsed = Self::parse_each(bytes)?;
        match parsed.refused.into_iter().next() {
            Some(r) => Err(ObjectError::Refused { program: r.name, section: r.section, reason: r.reason }),
            None => Ok(parsed.object),
        }
    }

    /// Parses, links and relocates an ELF eBPF object program by program: a program whose
    /// section name means nothing to libbpf, whose code does not decode, or whose section
    /// aya-obj cannot parse or relocate is refused on its own, with the reason, and the other
    /// programs are prepared as usual. An error only for what concerns the whole file (not an
    /// ELF eBPF object, corrupt structure, maps, or every program failing the same way).
    pub fn parse_each(bytes: &[u8]) -> Result<Parsed, ObjectError> {
        catch_parser_panic(|| parse_inner(bytes))
    }

    /// The program called `name`, or the only program when `name` is `None`.
    pub fn program(&self, name: Option<&str>) -> Result<&ObjectProgram, ObjectError> {
        let found = match name {
            Some(name) => self.programs.iter().find(|p| p.name == name),
            None if self.programs.len() == 1 => self.programs.first(),
            None => None,
        };
        found.ok_or_else(|| ObjectError::NoSuchProgram {
            name: name.unwrap_or("(none given; choose one)").to_owned(),
            available: self.programs.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", "),
        })
    }

    /// Index of the map called `name`.
    pub fn map_index(&self, name: &str) -> Option<usize> {
        self.maps.iter().position(|m| m.name == name)
    }
}

/// The largest global data section (`.bss*`, `.data*`, `.rodata*`) an object may have. Global
/// data becomes one map value, which the kernel caps at KMALLOC_MAX_SIZE (4 MiB on x86_64); a
/// larger (possibly only claimed, `.bss`) section would also make aya-obj allocate all of it.
pub const MAX_GLOBAL_DATA: u64 = 4 << 20;

/// The first global data section larger than [`MAX_GLOBAL_DATA`], with the size its header
/// claims (duet-kernel refuses it before aya sees the object, as [`Object::parse`] does).
pub fn oversized_global_data<'a>(file: &object::File<'a>) -> Option<(&'a str, u64)> {
    use object::{Object as _, ObjectSection as _};
    file.sections().find_map(|s| {
        let name = s.name().unwrap_or("");
        let global = [".bss", ".data", ".rodata"].iter().any(|p| name.starts_with(p));
        (global && s.size() > MAX_GLOBAL_DATA).then_some((name, s.size()))
    })
}

/// Structural checks aya-obj relies on but does not make itself (it would index out of bounds):
/// every defined symbol lies inside its section, and every code relocation inside the section it
/// patches.
fn validate_elf(bytes: &[u8]) -> Result<(), ObjectError> {
    use object::{Object as _, ObjectSection as _, ObjectSymbol as _, SectionIndex, SymbolSection};
    let file = object::File::parse(bytes).map_err(|e| ObjectError::Parse(format!("not an ELF file: {e}")))?;
    // eBPF objects are relocatable: every section sits at address 0 and symbols are offsets.
    if let Some(s) = file.sections().find(|s| s.address() != 0) {
        return Err(ObjectError::Parse(format!(
            "section {:?} has address {:#x}; eBPF objects are relocatable files whose sections start at 0",
            s.name().unwrap_or("?"),
            s.address()
        )));
    }
    if let Some((name, size)) = oversized_global_data(&file) {
        return Err(ObjectError::Parse(format!(
            "global data section {name:?} is {size} bytes; a map value (and so a global data section) is at most {MAX_GLOBAL_DATA} bytes"
        )));
    }
    let section_size = |index: SectionIndex| file.section_by_index(index).map(|s| s.size()).ok();
    for sym in file.symbols() {
        let SymbolSection::Section(index) = sym.section() else { continue };
        let Some(size) = section_size(index) else {
            return Err(ObjectError::Parse(format!(
                "symbol {:?} refers to a missing section",
                sym.name().unwrap_or("?")
            )));
        };
        let end = sym.address().checked_add(sym.size());
        if end.is_none_or(|end| end > size) {
            return Err(ObjectError::Parse(format!(
                "symbol {:?} (offset {}, size {}) lies outside its section of {size} bytes",
                sym.name().unwrap_or("?"),
                sym.address(),
                sym.size()
            )));
        }
    }
    // Relocations of code patch whole 8-byte instructions; aya-obj indexes them unchecked.
    for section in file.sections().filter(|s| s.kind() == object::SectionKind::Text) {
        let size = section.size();
        for (offset, _) in section.relocations() {
            if offset.checked_add(8).is_none_or(|end| end > size) {
                return Err(ObjectError::Parse(format!(
                    "relocation at offset {offset} lies outside section {:?} of {size} bytes",
                    section.name().unwrap_or("?")
                )));
            }
        }
    }
    Ok(())
}

/// The string table's byte range inside a `.BTF` section (from its header).
fn btf_string_range(btf: &[u8]) -> Option<std::ops::Range<usize>> {
    let word =
        |at: usize| -> Option<usize> { Some(u32::from_le_bytes(btf.get(at..at + 4)?.try_into().ok()?) as usize) };
    if btf.get(..2)? != [0x9f, 0xeb] {
        return None;
    }
    let start = word(4)?.checked_add(word(16)?)?;
    let end = start.checked_add(word(20)?)?;
    (end <= btf.len()).then_some(start..end)
}

fn parse_inner(bytes: &[u8]) -> Result<Parsed, ObjectError> {
    validate_elf(bytes)?;
    let sections = sections::program_sections(bytes);
    let mut refused = Vec::new();
    let mut disabled = BTreeSet::new();
    for s in sections.iter().filter(|s| s.kind.is_none()) {
        let reason = format!(
            "unknown section name `{}`: libbpf gives it no program type (see libbpf's \"Program Types and ELF \
             Sections\"; e.g. `xdp`, `tc`, `socket`, `kprobe/<function>`, `tracepoint/<category>/<name>`)",
            s.name
        );
        refuse_section(&mut refused, s, &reason);
        disabled.insert(s.index);
    }
    let built = match catch_parser_panic(|| build(bytes, &sections, &disabled)) {
        Ok(built) => built,
        Err(whole) => {
            // Find the program sections that fail on their own, refuse them, and build the rest.
            let candidates: Vec<&sections::ProgramSection> =
                sections.iter().filter(|s| !disabled.contains(&s.index)).collect();
            let mut failing = Vec::new();
            for s in &candidates {
                let mut others = disabled.clone();
                others.extend(candidates.iter().filter(|o| o.index != s.index).map(|o| o.index));
                if let Err(err) = catch_parser_panic(|| build(bytes, &sections, &others)) {
                    failing.push((*s, err));
                }
            }
            // When every program fails alone, the fault is the file's, not a program's.
            if failing.is_empty() || failing.len() == candidates.len() {
                return Err(whole);
            }
            for (s, err) in failing {
                refuse_section(&mut refused, s, &err.to_string());
                disabled.insert(s.index);
            }
            catch_parser_panic(|| build(bytes, &sections, &disabled)).map_err(|_| whole)?
        }
    };
    let (object, more) = built;
    refused.extend(more);
    refused.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Parsed { object, refused })
}

/// Refuses every program of a section (the section itself when it defines no function).
fn refuse_section(refused: &mut Vec<RefusedProgram>, section: &sections::ProgramSection, reason: &str) {
    let names = if section.functions.is_empty() { vec![section.name.clone()] } else { section.functions.clone() };
    for name in names {
        refused.push(RefusedProgram {
            name,
            section: section.name.clone(),
            kind: section.kind.clone(),
            reason: reason.to_owned(),
        });
    }
}

/// Parses and relocates the object with the program sections in `disabled` left out; programs
/// whose code does not decode are returned as refused.
fn build(
    bytes: &[u8],
    program_sections: &[sections::ProgramSection],
    disabled: &BTreeSet<usize>,
) -> Result<(Object, Vec<RefusedProgram>), ObjectError> {
    let mut refused = Vec::new();
    let (mut aliased, unnamed) = sections::aya_copy(bytes, program_sections, disabled);
    if !unnamed.is_empty() {
        let mut disabled = disabled.clone();
        for s in program_sections.iter().filter(|s| unnamed.contains(&s.index)) {
            refuse_section(&mut refused, s, "duet cannot parse this section name (too short to rename for aya-obj)");
            disabled.insert(s.index);
        }
        aliased = sections::aya_copy(bytes, program_sections, &disabled).0;
    }
    let mut obj = aya_obj::Object::parse(&aliased).map_err(|e| ObjectError::Parse(error_chain(&e)))?;

    // Maps in declaration order where the object records it, else by name (map_order.rs);
    // program references become indices into this list.
    let mut names: Vec<String> = obj.maps.keys().cloned().collect();
    map_order::sort(&mut names, bytes);
    let mut btf_types = btf_types::map_types(bytes);
    let maps: Vec<MapDef> = names
        .iter()
        .map(|name| {
            let m = &obj.maps[name];
            let origin = match m.section_kind() {
                EbpfSectionKind::BtfMaps => MapOrigin::BtfMaps,
                EbpfSectionKind::Data => MapOrigin::Data,
                EbpfSectionKind::Rodata => MapOrigin::Rodata,
                EbpfSectionKind::Bss => MapOrigin::Bss,
                _ => MapOrigin::Legacy,
            };
            let global = matches!(origin, MapOrigin::Data | MapOrigin::Rodata | MapOrigin::Bss);
            // A declared type is kept only when its size is the map's: a mismatch means the BTF
            // does not describe what the map holds.
            let types = if origin == MapOrigin::BtfMaps { btf_types.remove(name) } else { None }.unwrap_or_default();
            let sized = |t: Option<TypeLayout>, size: u32| t.filter(|t| t.size() == u64::from(size)).map(Arc::new);
            MapDef {
                name: name.clone(),
                map_type: m.map_type(),
                key_size: m.key_size(),
                value_size: m.value_size(),
                max_entries: m.max_entries(),
                flags: m.map_flags(),
                initial_data: global.then(|| m.data().to_vec()),
                origin,
                key_type: sized(types.key, m.key_size()),
                value_type: sized(types.value, m.value_size()),
                inner: m.inner().map(|inner| {
                    Box::new(MapDef {
                        name: format!("{name}.inner"),
                        map_type: inner.map_type(),
                        key_size: inner.key_size(),
                        value_size: inner.value_size(),
                        max_entries: inner.max_entries(),
                        flags: inner.map_flags(),
                        initial_data: None,
                        origin,
                        key_type: None,
                        value_type: None,
                        inner: None,
                    })
                }),
            }
        })
        .collect();

    // A map pseudo load already in the bytecode (not produced by a relocation) names a file
    // descriptor of the loading process, not a map of this object. Mark them all; relocation
    // rewrites the source field of those it binds to a map.
    for func in obj.functions.values_mut() {
        let mut i = 0;
        while i < func.instructions.len() {
            let insn = &mut func.instructions[i];
            if insn.code == LDDW {
                if MAP_PSEUDO_SRCS.contains(&insn.src_reg()) {
                    insn.set_src_reg(insn.src_reg() | UNBOUND_MARK);
                }
                i += 2;
            } else {
                i += 1;
            }
        }
    }

    let text_sections: HashSet<usize> = obj.functions.keys().map(|(section, _)| *section).collect();
    let fds: Vec<(String, i32, aya_obj::Map)> =
        names.iter().enumerate().map(|(i, n)| (n.clone(), i as i32, obj.maps[n].clone())).collect();
    obj.relocate_maps(fds.iter().map(|(n, fd, m)| (n.as_str(), *fd, m)), &text_sections)
        .map_err(|e| ObjectError::Relocation(error_chain(&e)))?;
    obj.relocate_calls(&text_sections).map_err(|e| ObjectError::Relocation(error_chain(&e)))?;

    let sections = section_names(bytes);
    let strings = obj.btf.as_ref().map(btf_strings).unwrap_or_default();
    let mut programs = Vec::new();
    for (name, prog) in &obj.programs {
        let func = obj
            .functions
            .get(&prog.function_key())
            .ok_or_else(|| ObjectError::Relocation(format!("program `{name}` has no instructions after linking")))?;
        // Unbound map loads, by slot, with the file descriptor their bytecode names.
        let mut unbound: BTreeMap<usize, i32> = BTreeMap::new();
        let raw: Vec<RawInsn> = func
            .instructions
            .iter()
            .enumerate()
            .map(|(slot, i)| {
                let (mut src, mut imm) = (i.src_reg(), i.imm);
                let marked = src & UNBOUND_MARK != 0 && MAP_PSEUDO_SRCS.contains(&(src & !UNBOUND_MARK));
                if i.code == LDDW && marked {
                    src &= !UNBOUND_MARK;
                    unbound.insert(slot, imm);
                    imm = UNBOUND_MAP as i32;
                }
                // Rebuild the 8-byte encoding from aya's bindgen struct.
                let mut b = [0u8; 8];
                b[0] = i.code;
                b[1] = i.dst_reg() | (src << 4);
                b[2..4].copy_from_slice(&i.off.to_le_bytes());
                b[4..8].copy_from_slice(&imm.to_le_bytes());
                RawInsn::from_bytes(b)
            })
            .collect();
        let section = sections.get(&prog.section_index).cloned().unwrap_or_default();
        let program = match Program::from_raw(&raw) {
            Ok(program) => program,
            Err(error) => {
                refused.push(RefusedProgram {
                    name: name.clone(),
                    kind: sections::section_kind(&section),
                    section,
                    reason: format!("its code is not valid eBPF: {error}"),
                });
                continue;
            }
        };
        let map_refs = program
            .insns()
            .iter()
            .filter_map(|(pc, insn)| {
                let offset = match insn.pseudo_src()? {
                    duet_isa::PseudoSrc::MapFd | duet_isa::PseudoSrc::MapIdx => None,
                    duet_isa::PseudoSrc::MapValue | duet_isa::PseudoSrc::MapIdxValue => {
                        Some((insn.imm as u64 >> 32) as u32)
                    }
                    _ => return None,
                };
                let map = insn.imm as u32 as usize;
                Some(MapReference { insn: *pc, map, offset, unbound_fd: unbound.get(pc).copied() })
            })
            .collect();
        let mut line_info: Vec<LineInfo> = func
            .line_info
            .line_info
            .iter()
            .map(|l| LineInfo {
                insn: l.insn_off as usize,
                file: strings.get(&l.file_name_off).cloned().unwrap_or_default(),
                source: strings.get(&l.line_off).cloned().unwrap_or_default(),
                line: l.line_col >> 10,
                column: l.line_col & 0x3ff,
            })
            .collect();
        line_info.sort_by_key(|l| l.insn);
        let kind = sections::section_kind(&section).unwrap_or_else(|| program_kind(&prog.section));
        programs.push(ObjectProgram { name: name.clone(), section, kind, program, map_refs, line_info });
    }
    programs.sort_by(|a, b| a.name.cmp(&b.name));
    let license = obj.license.to_string_lossy().into_owned();
    Ok((Object { license, programs, maps }, refused))
}

fn program_kind(section: &ProgramSection) -> ProgramKind {
    match section {
        ProgramSection::Xdp { .. } => ProgramKind::Xdp,
        ProgramSection::SocketFilter => ProgramKind::SocketFilter,
        ProgramSection::SchedClassifier => ProgramKind::SchedClassifier,
        ProgramSection::CgroupSkb { .. } => ProgramKind::CgroupSkb,
        ProgramSection::KProbe => ProgramKind::KProbe,
        ProgramSection::KRetProbe => ProgramKind::KRetProbe,
        ProgramSection::TracePoint => ProgramKind::TracePoint,
        ProgramSection::SockOps => ProgramKind::SockOps,
        ProgramSection::SkMsg => ProgramKind::SkMsg,
        ProgramSection::SkLookup => ProgramKind::SkLookup,
        ProgramSection::CgroupSockAddr { .. } => ProgramKind::CgroupSockAddr,
        other => ProgramKind::Other(format!("{other:?}")),
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut msg = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// Section names by index, read with the `object` crate (aya-obj does not keep them).
fn section_names(bytes: &[u8]) -> BTreeMap<usize, String> {
    use object::{Object as _, ObjectSection as _};
    let Ok(file) = object::File::parse(bytes) else { return BTreeMap::new() };
    file.sections().filter_map(|s| Some((s.index().0, s.name().ok()?.to_owned()))).collect()
}

/// The BTF string table by offset (aya-obj keeps its lookup private).
fn btf_strings(btf: &Btf) -> BTreeMap<u32, String> {
    let bytes = btf.to_bytes();
    let word = |at: usize| -> Option<u32> { Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?)) };
    let (Some(hdr_len), Some(str_off), Some(str_len)) = (word(4), word(16), word(20)) else {
        return BTreeMap::new();
    };
    let start = hdr_len as usize + str_off as usize;
    let Some(table) = bytes.get(start..start + str_len as usize) else { return BTreeMap::new() };
    let mut out = BTreeMap::new();
    let mut off = 0usize;
    for s in table.split(|b| *b == 0) {
        out.insert(off as u32, String::from_utf8_lossy(s).into_owned());
        off += s.len() + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for input in [&b""[..], b"\x7fELF", b"not an elf at all", &[0u8; 64]] {
            assert!(Object::parse(input).is_err());
        }
    }

    #[test]
    fn map_type_names() {
        assert_eq!(map_type_name(1), "hash");
        assert_eq!(map_type_name(27), "ringbuf");
        assert_eq!(map_type_name(999), "type 999");
    }
}
