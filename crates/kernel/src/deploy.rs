//! Deployment: load a program into the kernel, attach it to a hook, pin everything so later
//! processes find it, list what is attached, and detach it without leftovers.
//!
//! # Layout in bpffs
//!
//! Every attachment is one directory under the pin root (default [`DEFAULT_PIN_ROOT`]), named by
//! its id, which `duet` commands take: the kernel's id of its link (as `bpftool link` shows it),
//! which the kernel does not hand out again until its 31-bit ids wrap, so an id never names a
//! different attachment a moment later. The directory is filled under a temporary name
//! (`attaching-<pid namespace>-<pid>-<start time>-<n>`) and renamed to its id when complete, so
//! no reader sees an attachment half made; [`clean_leftovers`] removes what a killed attach left.
//!
//! ```text
//! /sys/fs/bpf/duet/<id>/link         the BPF link (attachment); removing it detaches
//! /sys/fs/bpf/duet/<id>/program      the program
//! /sys/fs/bpf/duet/<id>/meta         a one-entry array map whose value is the JSON metadata
//! /sys/fs/bpf/duet/<id>/maps/<name>  every map of the object, by its ELF name (`.` as `~`,
//!                                    since bpffs refuses dots: `.bss` is pinned as `~bss`)
//! ```
//!
//! bpffs holds only BPF objects (no regular files), so the metadata (program, hook, target,
//! object path, attach time) lives in a pinned map: it appears and disappears together with
//! the pins it describes, and `bpftool map dump pinned .../meta` shows it too.
//!
//! Every hook is attached through a BPF link (`BPF_LINK_CREATE`), never through netlink or a
//! perf event fd, because only links can be pinned: a pinned link keeps the program attached
//! after duet exits, and unpinning it detaches the program. Kernels too old for a hook's link
//! type get [`KernelError::KernelTooOld`].

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aya::maps::MapData;
use aya::pin::PinError;
use aya::programs::links::FdLink;
use aya::programs::tc::TcAttachOptions;
use aya::programs::{
    CgroupAttachMode, CgroupSockAddr, KProbe, LinkOrder, ProbeKind, Program, ProgramError, ProgramInfo,
    SchedClassifier, SkLookup, SockOps, TcAttachType, TracePoint, Xdp,
};
use aya::util::KernelVersion;
use aya::{Ebpf, EbpfLoader};
use aya_obj::ProgramSection;
use aya_obj::programs::CgroupSockAddrAttachType;
use duet_object::TypeLayout;
use serde::{Deserialize, Serialize};

use crate::error::{Errno, KernelError};
use crate::netns::NetnsGuard;
use crate::{access, boundary, bpffs, maps, run, sys};

/// Where duet pins attachments unless told otherwise (`$DUET_PIN_ROOT` in the CLI).
pub const DEFAULT_PIN_ROOT: &str = "/sys/fs/bpf/duet";

/// `CGROUP2_SUPER_MAGIC` from `linux/magic.h`.
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;
/// `BPF_MAP_TYPE_ARRAY`.
const BPF_MAP_TYPE_ARRAY: u32 = 2;
/// Where tracefs lives on current systems.
const TRACEFS: &str = "/sys/kernel/tracing";
/// How long `detach` waits for the kernel to free a program after its pins are gone.
const DETACH_WAIT: Duration = Duration::from_secs(2);

/// Where an XDP program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum XdpMode {
    /// In the driver (`XDP_FLAGS_DRV_MODE`); fails if the driver has no XDP support.
    Native,
    /// Generic XDP in the network stack (`XDP_FLAGS_SKB_MODE`); works on every interface.
    Skb,
}

/// Which side of a TC clsact hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TcDirection {
    /// Packets the interface receives.
    Ingress,
    /// Packets the interface sends.
    Egress,
}

/// A place in the kernel a program attaches to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Hook {
    /// XDP on a network interface.
    Xdp {
        /// The interface name.
        interface: String,
        /// Native or generic.
        mode: XdpMode,
    },
    /// TC (tcx, Linux 6.6+) on a network interface.
    Tc {
        /// The interface name.
        interface: String,
        /// Ingress or egress.
        direction: TcDirection,
    },
    /// A kprobe or kretprobe (the program's section says which) on a kernel function.
    Kprobe {
        /// The kernel function.
        function: String,
    },
    /// A tracepoint.
    Tracepoint {
        /// Its category, e.g. `sock`.
        category: String,
        /// Its name, e.g. `inet_sock_set_state`.
        name: String,
    },
    /// `cgroup/connect4` (sock_addr) on a cgroup v2 directory.
    CgroupConnect4 {
        /// The cgroup directory.
        cgroup: PathBuf,
    },
    /// `cgroup/connect6` (sock_addr) on a cgroup v2 directory.
    CgroupConnect6 {
        /// The cgroup directory.
        cgroup: PathBuf,
    },
    /// `sockops` on a cgroup v2 directory.
    SockOps {
        /// The cgroup directory.
        cgroup: PathBuf,
    },
    /// `sk_lookup` on a network namespace (Linux 5.9+): the program runs when an arriving packet
    /// looks for its socket there.
    SkLookup {
        /// The namespace's file: `/proc/self/ns/net` (the caller's), `/run/netns/<name>`, or
        /// `/proc/<pid>/ns/net`.
        netns: PathBuf,
    },
}

impl Hook {
    /// The hook's kind, e.g. `xdp (skb)`, `tc egress`, `kprobe`, `cgroup/connect4`.
    pub fn kind(&self) -> String {
        match self {
            Self::Xdp { mode: XdpMode::Native, .. } => "xdp".to_owned(),
            Self::Xdp { mode: XdpMode::Skb, .. } => "xdp (skb)".to_owned(),
            Self::Tc { direction: TcDirection::Ingress, .. } => "tc ingress".to_owned(),
            Self::Tc { direction: TcDirection::Egress, .. } => "tc egress".to_owned(),
            Self::Kprobe { .. } => "kprobe".to_owned(),
            Self::Tracepoint { .. } => "tracepoint".to_owned(),
            Self::CgroupConnect4 { .. } => "cgroup/connect4".to_owned(),
            Self::CgroupConnect6 { .. } => "cgroup/connect6".to_owned(),
            Self::SockOps { .. } => "sockops".to_owned(),
            Self::SkLookup { .. } => "sk_lookup".to_owned(),
        }
    }

    /// What it attaches to: an interface, function, tracepoint or cgroup path.
    pub fn target(&self) -> String {
        match self {
            Self::Xdp { interface, .. } | Self::Tc { interface, .. } => interface.clone(),
            Self::Kprobe { function } => function.clone(),
            Self::Tracepoint { category, name } => format!("{category}/{name}"),
            Self::CgroupConnect4 { cgroup } | Self::CgroupConnect6 { cgroup } | Self::SockOps { cgroup } => {
                cgroup.display().to_string()
            }
            Self::SkLookup { netns } => netns.display().to_string(),
        }
    }
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Xdp { .. } | Self::Tc { .. } => write!(f, "{} on {}", self.kind(), self.target()),
            _ => write!(f, "{} {}", self.kind(), self.target()),
        }
    }
}

/// What [`attach`] loads and where it attaches it.
#[derive(Clone, Debug)]
pub struct AttachRequest<'a> {
    /// The ELF `.bpf.o` bytes.
    pub object: &'a [u8],
    /// The object's file, recorded in the metadata (informational).
    pub object_path: Option<&'a Path>,
    /// The program to attach; `None` picks the object's only program that fits the hook.
    pub program: Option<&'a str>,
    /// Where to attach it.
    pub hook: Hook,
    /// For XDP and TC: the network namespace (a name under `/run/netns`, or a path) whose
    /// interface is meant. The calling thread enters it for the attach and returns.
    pub netns: Option<&'a str>,
    /// The pin root, e.g. [`DEFAULT_PIN_ROOT`].
    pub pin_root: &'a Path,
}

/// What duet records about an attachment (the JSON in its `meta` pin).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The program (function) name.
    pub program: String,
    /// The program type, e.g. `xdp`, `kretprobe`.
    pub program_type: String,
    /// Where it is attached.
    pub hook: Hook,
    /// The network namespace of the interface, if not the host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    /// The object file it came from, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// When it was attached, in seconds since the Unix epoch.
    pub attached_at: u64,
    /// The kernel's id of the program (as `bpftool prog` shows it).
    pub kernel_program_id: u32,
    /// The kernel's id of the link.
    pub kernel_link_id: u32,
    /// The names of the object's maps, pinned under `maps/`, in the object's map order (the
    /// order its program declared them in where the object records it, as `duet run` lists
    /// them; by name in attachments made before duet recorded that order).
    pub maps: Vec<String>,
    /// The key and value types the object's BTF declares, by map name (BTF-defined maps with
    /// types only), so `duet maps` shows and takes typed values after the object is gone.
    /// Attachments made before duet recorded them have none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub map_types: BTreeMap<String, MapLayouts>,
}

/// A map's key and value layouts, as [`Metadata::map_types`] records them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapLayouts {
    /// The key's type, when the object's BTF declares it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<TypeLayout>,
    /// The value's type, when the object's BTF declares it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<TypeLayout>,
}

/// The key and value layouts of an object's maps from its BTF, as [`Metadata::map_types`]
/// records them; none when duet cannot read the object.
pub(crate) fn map_layouts(object: &[u8]) -> BTreeMap<String, MapLayouts> {
    let Ok(object) = duet_object::Object::parse(object) else { return BTreeMap::new() };
    object
        .maps
        .into_iter()
        .filter(|m| m.key_type.is_some() || m.value_type.is_some())
        .map(|m| (m.name, MapLayouts { key: m.key_type.as_deref().cloned(), value: m.value_type.as_deref().cloned() }))
        .collect()
}

/// The names of an object's maps in duet-object's order (declaration order where the object
/// records it, else by name); none when duet cannot read the object.
pub(crate) fn map_order(object: &[u8]) -> Vec<String> {
    duet_object::Object::parse(object).map(|o| o.maps.into_iter().map(|m| m.name).collect()).unwrap_or_default()
}

/// `names` in the order of `order`; names it does not list come after them, by name.
pub(crate) fn in_map_order(mut names: Vec<String>, order: &[String]) -> Vec<String> {
    names.sort_by_cached_key(|name| (order.iter().position(|o| o == name).unwrap_or(usize::MAX), name.clone()));
    names
}

/// An attachment as found under the pin root.
#[derive(Clone, Debug)]
pub struct Attachment {
    /// Its id (the directory name).
    pub id: String,
    /// Its directory.
    pub dir: PathBuf,
    /// Its metadata, or why it could not be read.
    pub metadata: Result<Metadata, String>,
    /// Whether the link pin is present (the program is attached).
    pub attached: bool,
    /// Why the attachment no longer has an effect although it is pinned: its interface,
    /// network namespace or cgroup is gone (the kernel then keeps a defunct link until detach).
    pub defunct: Option<String>,
    /// The program's run statistics, when `kernel.bpf_stats_enabled` is on (see
    /// [`bpf_stats_enabled`]) and the program pin could be read.
    pub stats: Option<RunStats>,
}

/// Run statistics the kernel keeps per program while `kernel.bpf_stats_enabled` is 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunStats {
    /// How many times the program ran.
    pub run_count: u64,
    /// Total time in the program, in nanoseconds.
    pub run_time_ns: u64,
}

/// A program that [`load_check`] or [`load_each`] loaded, skipped or saw rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedProgram {
    /// The program name.
    pub name: String,
    /// The program type, as aya names it.
    pub kind: String,
    /// Instructions the verifier processed, when the kernel reports it.
    pub verified_insns: Option<u32>,
    /// The size of the JIT-compiled code in bytes (0 without JIT).
    pub jited_bytes: u32,
    /// `None` if it loaded; otherwise why it was skipped (e.g. it needs an attach target).
    pub skipped: Option<String>,
    /// With [`load_each`]: the kernel's rejection (with its verifier log) when it rejected it.
    pub rejected: Option<String>,
}

/// Whether the kernel collects run counts and times (`/proc/sys/kernel/bpf_stats_enabled`);
/// `None` if the file cannot be read. Enable with `sysctl -w kernel.bpf_stats_enabled=1`.
pub fn bpf_stats_enabled() -> Option<bool> {
    let text = std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled").ok()?;
    Some(text.trim() != "0")
}

/// Loads every program of the object into the kernel (the kernel verifier runs on each) and
/// unloads them again. On the first rejection, [`KernelError::Rejected`] carries the log.
/// Programs the loader leaves out ([`duet_object::kernel_object`]: a section name no loader
/// knows, a type aya cannot load, a program duet-object refuses) are listed as skipped, with
/// the reason.
pub fn load_check(object: &[u8]) -> Result<Vec<LoadedProgram>, KernelError> {
    boundary::contain("loading the object", || load_contained(object, false))
}

/// [`load_check`], program by program: a program the kernel rejects is listed with the kernel's
/// reason ([`LoadedProgram::rejected`]) and the others are still loaded and listed. An error only
/// for what concerns the whole object (it cannot be parsed, a map cannot be created).
pub fn load_each(object: &[u8]) -> Result<Vec<LoadedProgram>, KernelError> {
    boundary::contain("loading the object", || load_contained(object, true))
}

fn load_contained(object: &[u8], each: bool) -> Result<Vec<LoadedProgram>, KernelError> {
    access::check_access()?;
    let mut loader = EbpfLoader::new();
    loader.allow_unsupported_maps();
    // Maps pinned by name would otherwise land in /sys/fs/bpf and outlive the check; they get a
    // private bpffs directory, removed after the fds close (`_pins` is dropped after `ebpf`).
    let prepared = run::prepare(object, None)?;
    let object: &[u8] = &prepared.bytes;
    let obj = run::parse_object(object, None)?;
    let wants_pins = obj.maps.values().any(|map| map.pinning() == aya_obj::maps::PinningType::ByName);
    drop(obj);
    let _pins = if wants_pins {
        let dir = run::PinDir::create()?;
        loader.default_map_pin_directory(&dir.0);
        Some(dir)
    } else {
        None
    };
    let mut ebpf = loader.load(object).map_err(run::object_error)?;
    let mut names: Vec<String> = ebpf.programs().map(|(name, _)| name.to_owned()).collect();
    names.sort();
    // Programs the loader left out are listed as skipped, with the reason.
    let mut out: Vec<LoadedProgram> = prepared
        .refused
        .iter()
        .map(|r| LoadedProgram {
            name: r.name.clone(),
            kind: match &r.kind {
                None => "unknown".to_owned(),
                Some(duet_object::ProgramKind::Other(name)) => name.clone(),
                Some(kind) => format!("{kind:?}"),
            },
            verified_insns: None,
            jited_bytes: 0,
            skipped: Some(r.reason.clone()),
            rejected: None,
        })
        .collect();
    for name in names {
        let Some(program) = ebpf.program_mut(&name) else { continue };
        let kind = format!("{:?}", program.prog_type());
        if run::needs_attach_target(program) {
            out.push(LoadedProgram {
                name,
                kind,
                verified_insns: None,
                jited_bytes: 0,
                skipped: Some("needs an attach target (BTF function) to load".to_owned()),
                rejected: None,
            });
            continue;
        }
        if let Err(err) = run::load(&name, program, true) {
            if !each {
                return Err(err);
            }
            out.push(LoadedProgram {
                name,
                kind,
                verified_insns: None,
                jited_bytes: 0,
                skipped: None,
                rejected: Some(err.to_string()),
            });
            continue;
        }
        let info = program.info().ok();
        out.push(LoadedProgram {
            name,
            kind,
            verified_insns: info.as_ref().and_then(ProgramInfo::verified_instruction_count),
            jited_bytes: info.as_ref().map_or(0, ProgramInfo::size_jitted),
            skipped: None,
            rejected: None,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Loads the program, attaches it, and pins program, link, maps and metadata under a new id.
///
/// On any error nothing stays behind: the new directory is removed and the link is dropped
/// (which detaches the program).
pub fn attach(req: &AttachRequest<'_>) -> Result<Attachment, KernelError> {
    boundary::contain("loading and attaching the program", || attach_contained(req))
}

fn attach_contained(req: &AttachRequest<'_>) -> Result<Attachment, KernelError> {
    access::check_access()?;
    let prepared = run::prepare(req.object, req.program)?;
    let object: &[u8] = &prepared.bytes;
    let (name, section) = pick_program(object, req.program, &req.hook)?;
    bpffs::ensure_for_pinning(req.pin_root)?;
    // Best effort: what killed attaches left behind is in nobody's way (it has no id), but its
    // pins hold kernel memory.
    let _ = clean_leftovers(req.pin_root);
    if matches!(req.hook, Hook::Tracepoint { .. }) {
        ensure_tracefs()?;
    }
    let cgroup = open_target(&req.hook)?;

    let dir = AttachmentDir::create(req.pin_root)?;
    let maps_dir = dir.path.join("maps");
    std::fs::create_dir(&maps_dir).map_err(|source| pin_io("create", &maps_dir, source))?;

    let mut loader = EbpfLoader::new();
    loader.allow_unsupported_maps();
    loader.default_map_pin_directory(&maps_dir);
    let mut ebpf = loader.load(object).map_err(run::object_error)?;
    let program = ebpf
        .program_mut(&name)
        .ok_or_else(|| KernelError::ProgramNotFound { program: name.clone(), available: vec![] })?;
    run::load(&name, program, true)?;

    let link = {
        let _netns = match (req.netns, &req.hook) {
            (Some(ns), Hook::Xdp { .. } | Hook::Tc { .. }) => Some(NetnsGuard::enter(ns)?),
            _ => None,
        };
        attach_link(&name, program, &section, &req.hook, req.netns, cgroup.as_ref())?
    };
    // Link info needs Linux 5.8; every link type duet creates but cgroup links needs newer.
    let link_id = link.info().map(|info| info.id()).unwrap_or(0);

    let map_names = pin_maps(&ebpf, &maps_dir)?;
    let program = ebpf
        .program_mut(&name)
        .ok_or_else(|| KernelError::ProgramNotFound { program: name.clone(), available: vec![] })?;
    let program_pin = dir.path.join("program");
    program.pin(&program_pin).map_err(|err| pin_error("pin the program at", &program_pin, err))?;
    let program_id = program.info().map(|info| info.id()).unwrap_or(0);

    let metadata = Metadata {
        program: name.clone(),
        program_type: program_type_name(&section),
        hook: req.hook.clone(),
        netns: req.netns.map(str::to_owned),
        object: req.object_path.map(|p| p.display().to_string()),
        attached_at: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        kernel_program_id: program_id,
        kernel_link_id: link_id,
        maps: in_map_order(map_names, &map_order(req.object)),
        map_types: map_layouts(req.object),
    };
    write_metadata(&dir.path, &metadata)?;

    // The link goes last: once it is pinned the attachment is complete and outlives us, and the
    // rename makes it appear, whole, under its id: the kernel's link id (or, on kernels without
    // link info, the program id), which the kernel never hands out twice until the 31-bit ids
    // wrap, so an id names one attachment for good.
    let link_pin = dir.path.join("link");
    link.pin(&link_pin).map_err(|err| pin_error("pin the link at", &link_pin, err))?;
    let id = if link_id != 0 { link_id } else { program_id };
    let path = dir.finish(&id.to_string())?;
    Ok(Attachment { id: id.to_string(), dir: path, metadata: Ok(metadata), attached: true, stats: None, defunct: None })
}

/// Every attachment under the pin root, by id (numerically). An absent root lists nothing;
/// attachments still being made, and what killed attaches left behind, are not listed.
///
/// Fails with [`KernelError::BpffsNotMountedHere`] when this process runs in a mount namespace
/// of its own without bpffs (`ip netns exec`), where "nothing attached" would be wrong.
pub fn list(pin_root: &Path) -> Result<Vec<Attachment>, KernelError> {
    if !bpffs::check_readable(pin_root)? {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for id in ids(pin_root)? {
        out.push(open_attachment(pin_root, &id)?);
    }
    Ok(out)
}

/// The attachment with this id, or the attachment directory at this path.
pub fn find(pin_root: &Path, id_or_path: &str) -> Result<Attachment, KernelError> {
    if id_or_path.contains('/') {
        let dir = Path::new(id_or_path);
        if let (true, Some(parent), Some(name)) = (dir.join("meta").exists(), dir.parent(), dir.file_name()) {
            return open_attachment(parent, &name.to_string_lossy());
        }
    } else if bpffs::check_readable(pin_root)? && pin_root.join(id_or_path).is_dir() {
        return open_attachment(pin_root, id_or_path);
    }
    Err(KernelError::AttachmentNotFound {
        id: id_or_path.to_owned(),
        root: pin_root.to_owned(),
        available: ids(pin_root).unwrap_or_default(),
    })
}

/// Detaches and removes one attachment: the link pin first (which detaches the program), then
/// the program, metadata and map pins and the directory. Waits (up to 2 s) until the kernel has
/// freed the program, so that afterwards nothing of it is left.
pub fn detach(attachment: &Attachment) -> Result<(), KernelError> {
    let program_id = ProgramInfo::from_pin(attachment.dir.join("program")).ok().map(|info| info.id());
    let link = attachment.dir.join("link");
    match std::fs::remove_file(&link) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(pin_io("remove", &link, source)),
    }
    std::fs::remove_dir_all(&attachment.dir).map_err(|source| pin_io("remove", &attachment.dir, source))?;
    if let Some(id) = program_id {
        let deadline = Instant::now() + DETACH_WAIT;
        while Instant::now() < deadline && program_loaded(id) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    Ok(())
}

// === impl helpers ===

/// Picks the program and checks that its type fits the hook, before touching the kernel.
pub(crate) fn pick_program(
    object: &[u8],
    wanted: Option<&str>,
    hook: &Hook,
) -> Result<(String, ProgramSection), KernelError> {
    let obj = run::parse_object(object, wanted)?;
    let mut available: Vec<String> = obj.programs.keys().cloned().collect();
    available.sort();
    let (name, section) = match wanted {
        Some(name) => {
            let program = obj.programs.get(name).ok_or_else(|| KernelError::ProgramNotFound {
                program: name.to_owned(),
                available: available.clone(),
            })?;
            (name.to_owned(), program.section.clone())
        }
        None => {
            let fitting: Vec<_> = obj.programs.iter().filter(|(_, p)| fits(&p.section, hook)).collect();
            match fitting.as_slice() {
                [(name, program)] => ((*name).clone(), program.section.clone()),
                _ => {
                    let mut fitting: Vec<String> = fitting.iter().map(|(name, _)| (*name).clone()).collect();
                    fitting.sort();
                    let mut programs: Vec<String> = obj
                        .programs
                        .iter()
                        .map(|(name, p)| format!("{name} ({})", program_type_name(&p.section)))
                        .collect();
                    programs.sort();
                    return Err(KernelError::NoProgramForHook { hook: hook.to_string(), fitting, programs });
                }
            }
        }
    };
    if !fits(&section, hook) {
        return Err(KernelError::HookMismatch {
            program: name,
            kind: program_type_name(&section),
            hook: hook.to_string(),
            hint: hook_hint(&section),
        });
    }
    Ok((name, section))
}

fn fits(section: &ProgramSection, hook: &Hook) -> bool {
    match hook {
        Hook::Xdp { .. } => matches!(section, ProgramSection::Xdp { .. }),
        Hook::Tc { .. } => matches!(section, ProgramSection::SchedClassifier),
        Hook::Kprobe { .. } => matches!(section, ProgramSection::KProbe | ProgramSection::KRetProbe),
        Hook::Tracepoint { .. } => matches!(section, ProgramSection::TracePoint),
        Hook::CgroupConnect4 { .. } => {
            matches!(section, ProgramSection::CgroupSockAddr { attach_type: CgroupSockAddrAttachType::Connect4 })
        }
        Hook::CgroupConnect6 { .. } => {
            matches!(section, ProgramSection::CgroupSockAddr { attach_type: CgroupSockAddrAttachType::Connect6 })
        }
        Hook::SockOps { .. } => matches!(section, ProgramSection::SockOps),
        Hook::SkLookup { .. } => matches!(section, ProgramSection::SkLookup),
    }
}

fn hook_hint(section: &ProgramSection) -> String {
    match section {
        ProgramSection::Xdp { .. } => "attach it with --xdp <interface>".to_owned(),
        ProgramSection::SchedClassifier => "attach it with --tc <interface> --direction ingress|egress".to_owned(),
        ProgramSection::KProbe | ProgramSection::KRetProbe => "attach it with --kprobe <function>".to_owned(),
        ProgramSection::TracePoint => "attach it with --tracepoint <category>/<name>".to_owned(),
        ProgramSection::CgroupSockAddr { attach_type: CgroupSockAddrAttachType::Connect4 } => {
            "attach it with --cgroup <path> --connect4".to_owned()
        }
        ProgramSection::CgroupSockAddr { attach_type: CgroupSockAddrAttachType::Connect6 } => {
            "attach it with --cgroup <path> --connect6".to_owned()
        }
        ProgramSection::SockOps => "attach it with --cgroup <path> --sock-ops".to_owned(),
        ProgramSection::SkLookup => "attach it with --sk-lookup <netns file>".to_owned(),
        _ => "duet attaches xdp, tc (classifier), kprobe/kretprobe, tracepoint, cgroup/connect4, cgroup/connect6, \
              sockops and sk_lookup programs"
            .to_owned(),
    }
}

fn program_type_name(section: &ProgramSection) -> String {
    match section {
        ProgramSection::Xdp { .. } => "xdp".to_owned(),
        ProgramSection::SchedClassifier => "tc classifier".to_owned(),
        ProgramSection::KProbe => "kprobe".to_owned(),
        ProgramSection::KRetProbe => "kretprobe".to_owned(),
        ProgramSection::TracePoint => "tracepoint".to_owned(),
        ProgramSection::SockOps => "sockops".to_owned(),
        ProgramSection::SocketFilter => "socket filter".to_owned(),
        ProgramSection::CgroupSockAddr { attach_type } => format!("cgroup sock_addr ({attach_type:?})").to_lowercase(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Attaches through a BPF link and returns it, unpinned. `target` is what [`open_target`] opened
/// for the hook (its cgroup directory or network namespace file).
pub(crate) fn attach_link(
    name: &str,
    program: &mut Program,
    section: &ProgramSection,
    hook: &Hook,
    netns: Option<&str>,
    target: Option<&File>,
) -> Result<FdLink, KernelError> {
    let cgroup = target;
    let hook_text = hook.to_string();
    let attach_err = |err: ProgramError, hint: &dyn Fn(Errno) -> String| match err {
        ProgramError::SyscallError(sys) => {
            let errno = Errno::of(&sys.io_error);
            KernelError::Attach { program: name.to_owned(), hook: hook_text.clone(), errno, hint: hint(errno) }
        }
        ProgramError::UnknownInterface { name: iface } => {
            KernelError::InterfaceNotFound { name: iface, netns: netns.map(str::to_owned) }
        }
        source => {
            KernelError::AttachOther { program: name.to_owned(), hook: hook_text.clone(), source: Box::new(source) }
        }
    };
    let wrong_type = || KernelError::HookMismatch {
        program: name.to_owned(),
        kind: program_type_name(section),
        hook: hook.to_string(),
        hint: hook_hint(section),
    };
    let not_a_link = |needed: &'static str| KernelError::KernelTooOld {
        hook: hook.kind(),
        needed,
        running: kernel_version(),
        detail: String::new(),
    };
    match hook {
        Hook::Xdp { interface, mode } => {
            check_interface(interface, netns)?;
            let xdp: &mut Xdp = program.try_into().map_err(|_| wrong_type())?;
            let aya_mode = match mode {
                XdpMode::Native => aya::programs::XdpMode::Driver,
                XdpMode::Skb => aya::programs::XdpMode::Skb,
            };
            let id = xdp.attach(interface, aya_mode).map_err(|err| {
                attach_err(err, &|errno| match errno.0 {
                    libc::EOPNOTSUPP | 524 => {
                        format!("; the driver of `{interface}` has no native XDP support: use --skb for generic XDP")
                    }
                    libc::EEXIST | libc::EBUSY => format!(
                        "; another XDP program is already attached to `{interface}` (`duet ps`, or \
                         `ip link set dev {interface} xdp off` if it is not duet's)"
                    ),
                    _ => String::new(),
                })
            })?;
            let link = xdp.take_link(id).map_err(|err| attach_err(err, &|_| String::new()))?;
            FdLink::try_from(link).map_err(|_| not_a_link("5.9"))
        }
        Hook::Tc { interface, direction } => {
            check_interface(interface, netns)?;
            if !KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0)) {
                return Err(not_a_link("6.6 (tcx)"));
            }
            let tc: &mut SchedClassifier = program.try_into().map_err(|_| wrong_type())?;
            let attach_type = match direction {
                TcDirection::Ingress => TcAttachType::Ingress,
                TcDirection::Egress => TcAttachType::Egress,
            };
            let id = tc
                .attach_with_options(interface, attach_type, TcAttachOptions::TcxOrder(LinkOrder::default()))
                .map_err(|err| attach_err(err, &|_| String::new()))?;
            let link = tc.take_link(id).map_err(|err| attach_err(err, &|_| String::new()))?;
            FdLink::try_from(link).map_err(|_| not_a_link("6.6 (tcx)"))
        }
        Hook::Kprobe { function } => {
            let probe: &mut KProbe = program.try_into().map_err(|_| wrong_type())?;
            if !kprobes_available() {
                return Err(KernelError::HookUnsupported {
                    hook: "kprobe/kretprobe".to_owned(),
                    reason: "it was built without CONFIG_KPROBES (there is no \
                             /sys/bus/event_source/devices/kprobe and no kprobe_events in tracefs); \
                             use a kernel with CONFIG_KPROBES=y, or a tracepoint for the same event"
                        .to_owned(),
                });
            }
            let is_return = matches!(probe.kind(), ProbeKind::Return);
            if let Some(false) = kernel_function_exists(function) {
                return Err(KernelError::NoSuchAttachPoint {
                    what: format!("kernel function `{function}`"),
                    hint: "/proc/kallsyms lists the kernel's functions (inlined and static ones may be missing)"
                        .to_owned(),
                });
            }
            let id = probe.attach(function, 0).map_err(|err| match err {
                ProgramError::KProbeError(source) => KernelError::AttachOther {
                    program: name.to_owned(),
                    hook: format!(
                        "{} {function} (is `{function}` a kernel function? see /proc/kallsyms)",
                        if is_return { "kretprobe" } else { "kprobe" }
                    ),
                    source: Box::new(ProgramError::KProbeError(source)),
                },
                other => attach_err(other, &|_| String::new()),
            })?;
            let link = probe.take_link(id).map_err(|err| attach_err(err, &|_| String::new()))?;
            FdLink::try_from(link).map_err(|_| not_a_link("5.15 (perf_event links)"))
        }
        Hook::Tracepoint { category, name: tp_name } => {
            let tp: &mut TracePoint = program.try_into().map_err(|_| wrong_type())?;
            let events = tracefs_dir().join("events");
            if !events.join(category).join(tp_name).join("id").exists() {
                return Err(KernelError::NoSuchAttachPoint {
                    what: format!("tracepoint {category}/{tp_name}"),
                    hint: format!(
                        "`ls {}` lists the categories, and each category's directory its events",
                        events.display()
                    ),
                });
            }
            let id = tp.attach(category, tp_name).map_err(|err| match err {
                ProgramError::TracePointError(source) => KernelError::AttachOther {
                    program: name.to_owned(),
                    hook: format!(
                        "tracepoint {category}/{tp_name} (does {TRACEFS}/events/{category}/{tp_name} exist?)"
                    ),
                    source: Box::new(ProgramError::TracePointError(source)),
                },
                other => attach_err(other, &|_| String::new()),
            })?;
            let link = tp.take_link(id).map_err(|err| attach_err(err, &|_| String::new()))?;
            FdLink::try_from(link).map_err(|_| not_a_link("5.15 (perf_event links)"))
        }
        Hook::CgroupConnect4 { .. } | Hook::CgroupConnect6 { .. } => {
            let cgroup = cgroup.ok_or_else(wrong_type)?;
            if !KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(5, 7, 0)) {
                return Err(not_a_link("5.7"));
            }
            let prog: &mut CgroupSockAddr = program.try_into().map_err(|_| wrong_type())?;
            let id =
                prog.attach(cgroup, CgroupAttachMode::Single).map_err(|err| attach_err(err, &|_| String::new()))?;
            let link = prog.take_link(id).map_err(|err| attach_err(err, &|_| String::new()))?;
            FdLink::try_from(link).map_err(|_| not_a_link("5.7"))
        }
        Hook::SockOps { .. } => {
            let cgroup = cgroup.ok_or_else(wrong_type)?;
            if !KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(5, 7, 0)) {
                return Err(not_a_link("5.7"));
            }
            let prog: &mut SockOps = program.try_into().map_err(|_| wrong_type())?;
            let id =
                prog.attach(cgroup, CgroupAttachMode::Single).map_err(|err| attach_err(err, &|_| String::new()))?;
            let link = prog.take_link(id).map_err(|err| attach_err(err, &|_| String::new()))?;
            FdLink::try_from(link).map_err(|_| not_a_link("5.7"))
        }
        Hook::SkLookup { .. } => {
            let netns_file = target.ok_or_else(wrong_type)?;
            let prog: &mut SkLookup = program.try_into().map_err(|_| wrong_type())?;
            let id = prog.attach(netns_file).map_err(|err| {
                attach_err(err, &|errno| match errno.0 {
                    libc::EINVAL => "; sk_lookup links need Linux 5.9+ and a network namespace file".to_owned(),
                    _ => String::new(),
                })
            })?;
            let link = prog.take_link(id).map_err(|err| attach_err(err, &|_| String::new()))?;
            Ok(FdLink::from(link))
        }
    }
}

/// The file a hook attaches through: a cgroup directory, or a network namespace's file.
pub(crate) fn open_target(hook: &Hook) -> Result<Option<File>, KernelError> {
    match hook {
        Hook::CgroupConnect4 { cgroup } | Hook::CgroupConnect6 { cgroup } | Hook::SockOps { cgroup } => {
            Ok(Some(open_cgroup(cgroup)?))
        }
        Hook::SkLookup { netns } => File::open(netns).map(Some).map_err(|source| KernelError::HookUnsupported {
            hook: "sk_lookup".to_owned(),
            reason: format!("cannot open the network namespace file {}: {source}", netns.display()),
        }),
        _ => Ok(None),
    }
}

/// Whether the kernel can create kprobes: through the kprobe PMU (4.17+), or the tracefs
/// `kprobe_events` interface aya falls back to.
fn kprobes_available() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe/type").exists()
        || Path::new(TRACEFS).join("kprobe_events").exists()
        || Path::new("/sys/kernel/debug/tracing/kprobe_events").exists()
}

/// Whether `/proc/kallsyms` names this function; `None` if it cannot be read.
fn kernel_function_exists(function: &str) -> Option<bool> {
    let symbols = std::fs::read_to_string("/proc/kallsyms").ok()?;
    Some(symbols.lines().any(|line| {
        let mut fields = line.split_whitespace().skip(2);
        // Module symbols carry a `[module]` suffix field, which does not matter here.
        fields.next() == Some(function)
    }))
}

/// Where tracefs is mounted: /sys/kernel/tracing, or debugfs's tracing directory on old systems.
fn tracefs_dir() -> PathBuf {
    let debugfs = Path::new("/sys/kernel/debug/tracing");
    if !Path::new(TRACEFS).join("events").exists() && debugfs.join("events").exists() {
        debugfs.to_owned()
    } else {
        PathBuf::from(TRACEFS)
    }
}

fn check_interface(interface: &str, netns: Option<&str>) -> Result<(), KernelError> {
    match sys::if_index(interface) {
        Some(_) => Ok(()),
        None => Err(KernelError::InterfaceNotFound { name: interface.to_owned(), netns: netns.map(str::to_owned) }),
    }
}

fn kernel_version() -> String {
    KernelVersion::current().map_or_else(|_| "of unknown version".to_owned(), |v| v.to_string())
}

/// Opens a cgroup v2 directory for attaching.
pub(crate) fn open_cgroup(path: &Path) -> Result<File, KernelError> {
    let file = File::open(path).map_err(|err| KernelError::NotCgroup2 {
        path: path.to_owned(),
        reason: format!(" (cannot open it: {err})"),
    })?;
    match sys::fs_magic(path) {
        Ok(CGROUP2_SUPER_MAGIC) => Ok(file),
        Ok(_) => Err(KernelError::NotCgroup2 { path: path.to_owned(), reason: String::new() }),
        Err(err) => Err(KernelError::NotCgroup2 { path: path.to_owned(), reason: format!(" ({err})") }),
    }
}

/// Mounts tracefs at /sys/kernel/tracing if it is not there (aya looks there and in debugfs).
fn ensure_tracefs() -> Result<(), KernelError> {
    let has_entries = |p: &str| std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_some());
    if has_entries(TRACEFS) || has_entries("/sys/kernel/debug/tracing") {
        return Ok(());
    }
    sys::mount("tracefs", Path::new(TRACEFS), "tracefs")
        .map_err(|err| KernelError::TracefsMissing { errno: Errno::of(&err) })
}

/// Pins every map of the loaded object under `dir`, except those aya already pinned there by
/// name. Returns the sorted names.
pub(crate) fn pin_maps(ebpf: &Ebpf, dir: &Path) -> Result<Vec<String>, KernelError> {
    let mut names = Vec::new();
    for (name, map) in ebpf.maps() {
        let path = dir.join(pin_file_name(name));
        if !path.exists() {
            let (data, _) = maps::data_and_kind(map);
            data.pin(&path).map_err(|err| pin_error(&format!("pin map `{name}` at"), &path, err))?;
        }
        names.push(name.to_owned());
    }
    names.sort();
    Ok(names)
}

/// The file name a map is pinned under: bpffs refuses names with a dot (it reserves them for its
/// own files), so the dots of global-data maps (`.data`, `.rodata.str1.1`) become `~`, which no
/// C or Rust symbol contains. [`map_name_of_pin`] reverses it.
pub(crate) fn pin_file_name(map: &str) -> String {
    map.replace('.', "~")
}

/// The map name of a pin file name made by [`pin_file_name`].
pub(crate) fn map_name_of_pin(file: &str) -> String {
    file.replace('~', ".")
}

fn write_metadata(dir: &Path, metadata: &Metadata) -> Result<(), KernelError> {
    let path = dir.join("meta");
    let json = serde_json::to_vec(metadata)
        .map_err(|err| KernelError::Metadata { path: dir.to_owned(), reason: format!("cannot encode: {err}") })?;
    let value_size = u32::try_from(json.len()).unwrap_or(u32::MAX);
    let fd = sys::map_create(BPF_MAP_TYPE_ARRAY, 4, value_size, 1, "duet_meta").map_err(|err| KernelError::Pin {
        action: "create the metadata map for".to_owned(),
        path: path.clone(),
        errno: Errno::of(&err),
    })?;
    sys::map_update(fd.as_fd(), &0u32.to_le_bytes(), &json).map_err(|err| KernelError::Pin {
        action: "write the metadata of".to_owned(),
        path: path.clone(),
        errno: Errno::of(&err),
    })?;
    sys::obj_pin(fd.as_fd(), &path).map_err(|err| KernelError::Pin {
        action: "pin the metadata at".to_owned(),
        path: path.clone(),
        errno: Errno::of(&err),
    })
}

fn read_metadata(dir: &Path) -> Result<Metadata, String> {
    let path = dir.join("meta");
    let fd: OwnedFd =
        sys::obj_get(&path).map_err(|err| format!("cannot open {}: {}", path.display(), Errno::of(&err)))?;
    let data = MapData::from_fd(fd).map_err(|err| format!("{} is not a map: {err}", path.display()))?;
    let info = data.info().map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    let mut value = vec![0; info.value_size() as usize];
    sys::map_lookup(data.fd().as_fd(), &0u32.to_le_bytes(), &mut value)
        .map_err(|err| format!("cannot read {}: {}", path.display(), Errno::of(&err)))?;
    serde_json::from_slice(&value).map_err(|err| format!("{} holds no duet metadata: {err}", path.display()))
}

fn open_attachment(pin_root: &Path, id: &str) -> Result<Attachment, KernelError> {
    let dir = pin_root.join(id);
    let metadata = read_metadata(&dir);
    let stats = if bpf_stats_enabled() == Some(true) {
        ProgramInfo::from_pin(dir.join("program"))
            .ok()
            .map(|info| RunStats { run_count: info.run_count(), run_time_ns: info.run_time().as_nanos() as u64 })
    } else {
        None
    };
    let defunct = metadata.as_ref().ok().and_then(target_gone);
    Ok(Attachment { id: id.to_owned(), attached: dir.join("link").exists(), dir, metadata, stats, defunct })
}

/// Why an attachment's target is gone, if it is.
fn target_gone(metadata: &Metadata) -> Option<String> {
    match &metadata.hook {
        Hook::Xdp { interface, .. } | Hook::Tc { interface, .. } => {
            let _netns = match &metadata.netns {
                Some(ns) => match NetnsGuard::enter(ns) {
                    Ok(guard) => Some(guard),
                    Err(_) => return Some(format!("network namespace {ns} is gone")),
                },
                None => None,
            };
            sys::if_index(interface).is_none().then(|| format!("interface {interface} is gone"))
        }
        Hook::CgroupConnect4 { cgroup } | Hook::CgroupConnect6 { cgroup } | Hook::SockOps { cgroup } => {
            (!cgroup.exists()).then(|| format!("cgroup {} is gone", cgroup.display()))
        }
        Hook::SkLookup { netns } => (!netns.exists()).then(|| format!("network namespace {} is gone", netns.display())),
        Hook::Kprobe { .. } | Hook::Tracepoint { .. } => None,
    }
}

/// The attachment ids under the root, numerically sorted; nothing if the root does not exist.
/// Empty id directories (what an older duet left when killed during an attach) are not ids.
fn ids(pin_root: &Path) -> Result<Vec<String>, KernelError> {
    let entries = match std::fs::read_dir(pin_root) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(pin_io("read", pin_root, source)),
    };
    let mut ids: Vec<(u64, String)> = entries
        .flatten()
        .filter(|e| e.path().is_dir() && !is_empty_shell(&e.path()))
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.parse::<u64>().ok().map(|n| (n, name))
        })
        .collect();
    ids.sort();
    Ok(ids.into_iter().map(|(_, name)| name).collect())
}

fn program_loaded(id: u32) -> bool {
    aya::programs::loaded_programs().flatten().any(|info| info.id() == id)
}

pub(crate) fn pin_io(action: &'static str, path: &Path, source: io::Error) -> KernelError {
    KernelError::PinIo { action, path: path.to_owned(), source }
}

fn pin_error(action: &str, path: &Path, err: PinError) -> KernelError {
    let errno = match &err {
        PinError::SyscallError(sys) => Errno::of(&sys.io_error),
        _ => Errno(libc::EINVAL),
    };
    KernelError::Pin { action: action.to_owned(), path: path.to_owned(), errno }
}

// === Attachment directories: made whole or not at all ===

/// How an attachment directory is named while [`attach`] fills it:
/// `attaching-<pid namespace>-<pid>-<process start time>-<n>`, so that a later duet can tell
/// whether the process making it is still alive.
const ATTACHING: &str = "attaching-";

/// How long a directory must have been left unchanged before it counts as left over when duet
/// cannot ask whether its maker is alive: an empty id directory of an older duet, or an
/// attaching directory of a process in another PID namespace (a container sharing bpffs). An
/// attach changes its directory every few milliseconds, at least after the kernel verifier ran.
const LEFTOVER_AGE: Duration = Duration::from_secs(60);

/// Removes what killed `duet attach` processes left under the pin root: attaching directories
/// whose process is gone (with every pin in them; a pinned link there detaches when removed),
/// and empty id directories of older duet versions. Returns how many were removed.
pub fn clean_leftovers(pin_root: &Path) -> Result<usize, KernelError> {
    let entries = match std::fs::read_dir(pin_root) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(source) => return Err(pin_io("read", pin_root, source)),
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() && is_leftover(&path, &name) {
            std::fs::remove_dir_all(&path).map_err(|source| pin_io("remove", &path, source))?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn is_leftover(dir: &Path, name: &str) -> bool {
    let unchanged_for_long = || {
        std::fs::metadata(dir).and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|age| age > LEFTOVER_AGE))
    };
    if let Some(rest) = name.strip_prefix(ATTACHING) {
        let maker: Vec<u64> = rest.split('-').map_while(|n| n.parse().ok()).collect();
        let ours = Maker::current();
        return match maker.as_slice() {
            // Zeros mean its maker could not read /proc; then only age tells.
            &[pid_ns, pid, start, _] if pid_ns != 0 && start != 0 && pid_ns == ours.pid_ns => {
                Maker::start_time(pid) != Some(start)
            }
            _ => unchanged_for_long(),
        };
    }
    name.parse::<u64>().is_ok() && is_empty_shell(dir) && unchanged_for_long()
}

/// An id directory with nothing in it but (at most) an empty `maps/`: what older duet versions
/// left when killed between creating an attachment's directory and pinning into it.
fn is_empty_shell(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    entries
        .flatten()
        .all(|e| e.file_name() == "maps" && std::fs::read_dir(e.path()).is_ok_and(|mut m| m.next().is_none()))
}

/// The process making an attaching directory: its PID namespace (the inode of
/// `/proc/self/ns/pid`), its pid and its start time (clock ticks after boot), which together
/// name one process for good even when pids are reused.
#[derive(Clone, Copy, Debug, Default)]
struct Maker {
    pid_ns: u64,
    pid: u64,
    start: u64,
}

impl Maker {
    /// This process; zeros where /proc does not say.
    fn current() -> Self {
        let pid_ns = std::fs::read_link("/proc/self/ns/pid")
            .ok()
            .and_then(|link| {
                let link = link.to_string_lossy().into_owned();
                link.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
            })
            .unwrap_or(0);
        let pid = u64::from(std::process::id());
        Self { pid_ns, pid, start: Self::start_time(pid).unwrap_or(0) }
    }

    /// The start time of process `pid` (field 22 of `/proc/<pid>/stat`), if it exists.
    fn start_time(pid: u64) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) may hold spaces and parentheses; it ends at the last `)`.
        let after_name = &stat[stat.rfind(')')? + 1..];
        after_name.split_whitespace().nth(19)?.parse().ok()
    }
}

/// An attachment directory being made: created under a temporary name, renamed to its id when
/// complete ([`finish`](Self::finish)), and removed with everything in it otherwise, so an
/// attach that fails halfway leaves no pins behind and one that is killed leaves a directory
/// [`clean_leftovers`] recognises. bpffs renames within one mount atomically, so `ps`,
/// `detach` and `maps` never see an attachment half made.
struct AttachmentDir {
    path: PathBuf,
    keep: bool,
}

impl AttachmentDir {
    fn create(root: &Path) -> Result<Self, KernelError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let maker = Maker::current();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = root.join(format!("{ATTACHING}{}-{}-{}-{n}", maker.pid_ns, maker.pid, maker.start));
        std::fs::create_dir(&path).map_err(|source| pin_io("create", &path, source))?;
        Ok(Self { path, keep: false })
    }

    /// Renames the directory to `<root>/<id>` and keeps it.
    fn finish(mut self, id: &str) -> Result<PathBuf, KernelError> {
        let target = self.path.with_file_name(id);
        match std::fs::rename(&self.path, &target) {
            Ok(()) => {
                self.keep = true;
                Ok(target)
            }
            Err(err) if matches!(err.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY)) => {
                Err(KernelError::AttachmentIdTaken { id: id.to_owned(), path: target })
            }
            Err(source) => Err(pin_io("rename", &self.path, source)),
        }
    }
}

impl Drop for AttachmentDir {
    fn drop(&mut self) {
        if !self.keep {
            // Best effort: the error that made the attach fail is what the user needs to see.
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_through_json() {
        let metadata = Metadata {
            program: "fw".to_owned(),
            program_type: "xdp".to_owned(),
            hook: Hook::Xdp { interface: "eth0".to_owned(), mode: XdpMode::Skb },
            netns: Some("blue".to_owned()),
            object: Some("/tmp/fw.o".to_owned()),
            attached_at: 1_700_000_000,
            kernel_program_id: 7,
            kernel_link_id: 8,
            maps: vec!["BLOCKLIST".to_owned()],
            map_types: BTreeMap::from([(
                "BLOCKLIST".to_owned(),
                MapLayouts { key: Some(TypeLayout::Int { size: 4, signed: false }), value: None },
            )]),
        };
        let json = serde_json::to_string(&metadata).unwrap();
        assert!(json.contains(r#""hook":{"type":"xdp","interface":"eth0","mode":"skb"}"#), "{json}");
        assert!(json.contains(r#""map_types":{"BLOCKLIST":{"key":{"kind":"int","size":4,"signed":false}}}"#), "{json}");
        assert_eq!(serde_json::from_str::<Metadata>(&json).unwrap(), metadata);
        // Metadata written before duet recorded types still reads.
        let old = json.replace(r#","map_types":{"BLOCKLIST":{"key":{"kind":"int","size":4,"signed":false}}}"#, "");
        assert!(serde_json::from_str::<Metadata>(&old).unwrap().map_types.is_empty());
    }

    #[test]
    fn hooks_describe_themselves() {
        let tc = Hook::Tc { interface: "va".to_owned(), direction: TcDirection::Egress };
        assert_eq!(tc.to_string(), "tc egress on va");
        let tp = Hook::Tracepoint { category: "sock".to_owned(), name: "inet_sock_set_state".to_owned() };
        assert_eq!(tp.to_string(), "tracepoint sock/inet_sock_set_state");
        let cg = Hook::CgroupConnect4 { cgroup: PathBuf::from("/sys/fs/cgroup/app") };
        assert_eq!((cg.kind(), cg.target()), ("cgroup/connect4".to_owned(), "/sys/fs/cgroup/app".to_owned()));
    }

    #[test]
    fn program_types_fit_only_their_hooks() {
        let xdp = ProgramSection::Xdp { frags: false, attach_type: aya_obj::programs::XdpAttachType::Interface };
        let xdp_hook = Hook::Xdp { interface: "lo".to_owned(), mode: XdpMode::Native };
        let kprobe_hook = Hook::Kprobe { function: "f".to_owned() };
        assert!(fits(&xdp, &xdp_hook));
        assert!(!fits(&xdp, &kprobe_hook));
        assert!(fits(&ProgramSection::KRetProbe, &kprobe_hook));
        let bind4 = ProgramSection::CgroupSockAddr { attach_type: CgroupSockAddrAttachType::Bind4 };
        assert!(!fits(&bind4, &Hook::CgroupConnect4 { cgroup: PathBuf::from("/") }));
        assert!(hook_hint(&ProgramSection::SockOps).contains("--sock-ops"));
    }

    #[test]
    fn attaching_directories_name_a_live_process_for_good() {
        let me = Maker::current();
        assert!(me.pid_ns != 0 && me.start != 0, "{me:?}");
        let dir = std::env::temp_dir();
        let name = |start: u64| format!("{ATTACHING}{}-{}-{start}-0", me.pid_ns, me.pid);
        assert!(!is_leftover(&dir, &name(me.start)), "this process is alive");
        assert!(is_leftover(&dir, &name(me.start + 1)), "another process with our pid is gone");
    }

    #[test]
    fn global_data_maps_get_dot_free_pin_names() {
        for name in [".data", ".rodata.str1.1", ".bss", "BLOCKLIST", "my_map"] {
            let file = pin_file_name(name);
            assert!(!file.contains('.'), "{file}");
            assert_eq!(map_name_of_pin(&file), name);
        }
    }
}
