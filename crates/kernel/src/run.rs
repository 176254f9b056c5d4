//! `test_run`: load an object with aya, seed it, run one program over packets, read everything back.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use aya::maps::{Map, MapData, ProgramArray, RingBuf};
use aya::programs::{Program, ProgramError, TestRun, TestRunOptions};
use aya::{Ebpf, EbpfError, EbpfLoader};
use aya_obj::ProgramSection;
use aya_obj::maps::PinningType;
use aya_obj::obj::ParseError;

use crate::error::{Errno, KernelError};
use crate::{MapEntries, PacketOutcome, TestRunInput, TestRunOutput, access, boundary, maps, sys};

/// Room for the packet to grow, beyond its input length, in the `data_out` buffer.
///
/// XDP's `adjust_head` can prepend up to the 256-byte headroom, and `adjust_tail` can extend the
/// frame up to the end of its page, so a page of slack holds every output a test run produces.
/// A larger buffer costs nothing: the kernel copies only the packet's real length.
const DATA_OUT_SLACK: usize = 4096;

/// The CPU test runs are pinned to, so per-CPU map effects land in that slot.
const RUN_CPU: usize = 0;

/// A program type as the object declares it (its section).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProgramKind {
    /// `xdp`
    Xdp,
    /// `socket`
    SocketFilter,
    /// `tc` / `classifier`
    SchedClassifier,
    /// `cgroup_skb/...`
    CgroupSkb,
    /// `flow_dissector`
    FlowDissector,
    /// Any other type, by aya's name for its section.
    Other(String),
}

impl ProgramKind {
    /// Whether [`test_run`] can run this program type on packets.
    pub fn test_runnable(&self) -> bool {
        !matches!(self, Self::Other(_))
    }

    fn of_section(section: &ProgramSection) -> Self {
        match section {
            ProgramSection::Xdp { .. } => Self::Xdp,
            ProgramSection::SocketFilter => Self::SocketFilter,
            ProgramSection::SchedClassifier => Self::SchedClassifier,
            ProgramSection::CgroupSkb { .. } => Self::CgroupSkb,
            ProgramSection::FlowDissector => Self::FlowDissector,
            other => Self::Other(format!("{other:?}")),
        }
    }
}

impl fmt::Display for ProgramKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Xdp => f.write_str("xdp"),
            Self::SocketFilter => f.write_str("socket filter"),
            Self::SchedClassifier => f.write_str("tc classifier"),
            Self::CgroupSkb => f.write_str("cgroup_skb"),
            Self::FlowDissector => f.write_str("flow_dissector"),
            Self::Other(name) => f.write_str(name),
        }
    }
}

/// A program of an object, as listed by [`list_programs`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramSummary {
    /// The program (function) name, as [`TestRunInput::program`] takes it.
    pub name: String,
    /// Its type.
    pub kind: ProgramKind,
}

/// The programs of an object, sorted by name, without touching the kernel.
pub fn list_programs(object: &[u8]) -> Result<Vec<ProgramSummary>, KernelError> {
    boundary::contain("reading the object", || {
        let prepared = prepare(object, None)?;
        let obj = parse_object(&prepared.bytes, None)?;
        let mut programs: Vec<_> = obj
            .programs
            .iter()
            .map(|(name, prog)| ProgramSummary { name: name.clone(), kind: ProgramKind::of_section(&prog.section) })
            .collect();
        programs.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(programs)
    })
}

/// The object as duet's kernel loader hands it to aya ([`duet_object::kernel_object`]: section
/// names libbpf accepts and aya does not are renamed, programs no loader knows are left out); an
/// error if `wanted` is one of those left out.
pub(crate) fn prepare<'a>(
    object: &'a [u8],
    wanted: Option<&str>,
) -> Result<duet_object::KernelObject<'a>, KernelError> {
    let prepared = duet_object::kernel_object(object);
    if let Some(r) = prepared.refused.iter().find(|r| Some(r.name.as_str()) == wanted) {
        return Err(KernelError::ProgramRefused { program: r.name.clone(), reason: r.reason.clone() });
    }
    Ok(prepared)
}

/// Parses the object with aya-obj, after the checks aya cannot survive without
/// ([`boundary::check_object`]) and the refusal of duet's userspace-only programs (naming
/// `wanted` if it is one). Every entry point calls this before aya loads anything, inside
/// [`boundary::contain`].
pub(crate) fn parse_object(object: &[u8], wanted: Option<&str>) -> Result<aya_obj::Object, KernelError> {
    boundary::check_object(object)?;
    boundary::refuse_userspace_only(object, wanted)?;
    aya_obj::Object::parse(object).map_err(|err| object_error(EbpfError::ParseError(err)))
}

/// Loads `input.object` into the kernel, seeds its maps and prog_arrays, runs `input.program`
/// once per packet with `BPF_PROG_TEST_RUN` on CPU 0, and returns what the kernel reported and
/// every map's final contents.
///
/// All programs of the object are loaded (tail calls may reach any of them), except those that
/// need an attach target (fentry, fexit, lsm, tp_btf, iter, extension), which are skipped unless
/// they are the one to run or a tail-call target; any other program the kernel rejects, or that
/// [`duet_object::kernel_object`] leaves out, is left out too unless the run needs it. Everything is released when this returns.
/// [`TestRunner`] does the same packet by packet, for captures too large to hold.
pub fn test_run(input: &TestRunInput<'_>) -> Result<TestRunOutput, KernelError> {
    let mut runner = TestRunner::load(&TestRunConfig {
        object: input.object,
        program: input.program,
        prog_arrays: input.prog_arrays,
        repeat: input.repeat,
    })?;
    for (name, key, value) in input.maps_in {
        runner.seed(name, key, std::slice::from_ref(value))?;
    }
    let packets = input.packets.iter().map(|packet| runner.run(packet)).collect::<Result<Vec<_>, _>>()?;
    let (maps, ringbufs) = runner.finish()?;
    Ok(TestRunOutput { packets, maps, ringbufs })
}

/// What [`TestRunner::load`] loads: [`TestRunInput`] without the packets and the map seeds.
#[derive(Clone, Copy, Debug)]
pub struct TestRunConfig<'a> {
    /// The ELF `.bpf.o` bytes.
    pub object: &'a [u8],
    /// The program (function) name to run.
    pub program: &'a str,
    /// `(prog_array map name, index, program name)` entries that seed tail calls.
    pub prog_arrays: &'a [(String, u32, String)],
    /// `BPF_PROG_TEST_RUN` repeat count per packet (at least 1).
    pub repeat: u32,
}

/// An object loaded for test runs, run packet by packet ([`run`](Self::run)), so a capture
/// streams through it and memory stays flat whatever its size; [`finish`](Self::finish) reads
/// the maps and ring buffers and releases everything (dropping it releases everything too).
///
/// Runs happen on CPU 0: the thread that loads the runner is pinned there until the runner is
/// dropped, so a runner stays on its thread (it is not `Send`).
pub struct TestRunner {
    // Field order is drop order: the prog_arrays and the object's fds close before the private
    // pin directory is removed, and the thread is unpinned last.
    /// Kept open while programs run: the kernel empties a prog_array when its last user-space fd
    /// closes.
    prog_arrays: BTreeMap<String, ProgramArray<MapData>>,
    ebpf: Ebpf,
    program: String,
    names: Vec<String>,
    repeat: u32,
    n_cpus: usize,
    _pins: Option<PinDir>,
    _cpu: sys::CpuPin,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl fmt::Debug for TestRunner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestRunner").field("program", &self.program).finish_non_exhaustive()
    }
}

impl TestRunner {
    /// Loads the object (every program, as [`test_run`] does), seeds the prog_arrays and checks
    /// that the program can test-run.
    pub fn load(config: &TestRunConfig<'_>) -> Result<TestRunner, KernelError> {
        boundary::contain("loading the object", || Self::load_contained(config))
    }

    fn load_contained(config: &TestRunConfig<'_>) -> Result<TestRunner, KernelError> {
        access::check_access()?;
        let n_cpus = aya::util::nr_cpus().map_err(|(path, source)| KernelError::CpuCount { path, source })?;

        // Maps that ask to be pinned by name (LIBBPF_PIN_BY_NAME) would otherwise be pinned in
        // /sys/fs/bpf, outlive this runner, and be reused by the next one. They get a private
        // directory instead, removed with everything else when the runner is dropped.
        let prepared = prepare(config.object, Some(config.program))?;
        let object: &[u8] = &prepared.bytes;
        let obj = parse_object(object, Some(config.program))?;
        let wants_pins = obj.maps.values().any(|map| map.pinning() == PinningType::ByName);
        drop(obj);
        let mut loader = EbpfLoader::new();
        loader.allow_unsupported_maps();
        let pins = if wants_pins {
            let dir = PinDir::create()?;
            loader.default_map_pin_directory(&dir.0);
            Some(dir)
        } else {
            None
        };
        let mut ebpf = loader.load(object).map_err(object_error)?;

        let names = load_programs(&mut ebpf, config)?;
        let program = ebpf.program(config.program).ok_or_else(|| KernelError::ProgramNotFound {
            program: config.program.to_owned(),
            available: names.clone(),
        })?;
        if let Some(kind) = not_test_runnable(program) {
            return Err(KernelError::NotTestRunnable { program: config.program.to_owned(), kind: kind.to_owned() });
        }
        let prog_arrays = seed_prog_arrays(&mut ebpf, config.prog_arrays, &names)?;
        let cpu = sys::CpuPin::new(RUN_CPU).map_err(|err| KernelError::CpuAffinity { errno: Errno::of(&err) })?;
        Ok(TestRunner {
            prog_arrays,
            ebpf,
            program: config.program.to_owned(),
            names,
            repeat: config.repeat.max(1),
            n_cpus,
            _pins: pins,
            _cpu: cpu,
            _not_send: std::marker::PhantomData,
        })
    }

    /// Writes one map entry (`BPF_ANY`): `values` is one value (for a per-CPU map, the value of
    /// every CPU) or, for a per-CPU map, one value per CPU. Global data uses key `[0, 0, 0, 0]`
    /// and the whole section as value (`.rodata*` cannot be written: the kernel freezes it).
    pub fn seed(&mut self, map: &str, key: &[u8], values: &[Vec<u8>]) -> Result<(), KernelError> {
        boundary::contain("writing a map", || {
            let found = find_map(&self.ebpf, map)?;
            maps::write_values(map, found, key, values, self.n_cpus)
        })
    }

    /// The number of possible CPUs, the number of values of a per-CPU map.
    pub fn n_cpus(&self) -> usize {
        self.n_cpus
    }

    /// The type of the map called `name`, if the object has it.
    pub fn map_kind(&self, name: &str) -> Option<maps::MapKind> {
        self.ebpf.map(name).map(maps::kind_of)
    }

    /// Runs the program on one packet (repeated as configured) and returns the kernel's answer.
    pub fn run(&mut self, packet: &[u8]) -> Result<PacketOutcome, KernelError> {
        boundary::contain("running the program", || {
            let program = self.ebpf.program(&self.program).ok_or_else(|| KernelError::ProgramNotFound {
                program: self.program.clone(),
                available: self.names.clone(),
            })?;
            Ok(run_packet(program, packet, self.repeat))
        })
    }

    /// Every dumpable map's entries and every ring buffer's records, by map name; then releases
    /// the object.
    pub fn finish(mut self) -> Result<MapsAndRings, KernelError> {
        // The prog_arrays close first, as they would on drop; they hold no key/value data.
        self.prog_arrays.clear();
        let n_cpus = self.n_cpus;
        boundary::contain("reading the maps", || read_maps(&mut self.ebpf, n_cpus))
    }
}

/// Loads every program of the object, in name order so that, of several bad programs, the same
/// one is always reported. A program the run needs (the one to run, a tail-call target) must
/// load; any other that the kernel refuses is left out, as a program that was never there: one
/// bad program does not cost the others. Returns the sorted names of the loaded programs.
fn load_programs(ebpf: &mut Ebpf, input: &TestRunConfig<'_>) -> Result<Vec<String>, KernelError> {
    let mut names: Vec<String> = ebpf.programs().map(|(name, _)| name.to_owned()).collect();
    names.sort();
    let required = |name: &str| name == input.program || input.prog_arrays.iter().any(|(_, _, p)| p == name);
    let mut loaded = Vec::new();
    for name in names {
        if let Some(program) = ebpf.program_mut(&name) {
            match load(&name, program, required(&name)) {
                Ok(()) => loaded.push(name),
                Err(err) if required(&name) => return Err(err),
                Err(_) => {}
            }
        }
    }
    Ok(loaded)
}

/// Puts the tail-call targets of `input.prog_arrays` in place; the returned arrays must stay
/// alive while programs run.
fn seed_prog_arrays(
    ebpf: &mut Ebpf,
    prog_arrays: &[(String, u32, String)],
    names: &[String],
) -> Result<BTreeMap<String, ProgramArray<MapData>>, KernelError> {
    let mut arrays: BTreeMap<String, ProgramArray<MapData>> = BTreeMap::new();
    for (map_name, index, prog_name) in prog_arrays {
        let set_err = |source| KernelError::ProgramArraySet {
            map: map_name.clone(),
            index: *index,
            program: prog_name.clone(),
            source: Box::new(source),
        };
        let array = match arrays.entry(map_name.clone()) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let map = find_map(ebpf, map_name)?;
                if !matches!(map, Map::ProgramArray(_)) {
                    let (_, kind) = maps::data_and_kind(map);
                    return Err(KernelError::NotProgramArray { map: map_name.clone(), kind: kind.to_owned() });
                }
                let map = ebpf.take_map(map_name).ok_or_else(|| map_not_found(ebpf, map_name))?;
                entry.insert(ProgramArray::try_from(map).map_err(set_err)?)
            }
        };
        let target = ebpf
            .program(prog_name)
            .ok_or_else(|| KernelError::ProgramNotFound { program: prog_name.clone(), available: names.to_vec() })?;
        let fd = target
            .fd()
            .map_err(|source| KernelError::ProgramLoad { program: prog_name.clone(), source: Box::new(source) })?;
        array.set(*index, fd, 0).map_err(set_err)?;
    }
    Ok(arrays)
}

/// Every dumpable map's entries and every ring buffer's records, by map name.
fn read_maps(ebpf: &mut Ebpf, n_cpus: usize) -> Result<MapsAndRings, KernelError> {
    let mut map_names: Vec<String> = ebpf.maps().map(|(name, _)| name.to_owned()).collect();
    map_names.sort();
    let mut maps_out = BTreeMap::new();
    let mut ringbufs = BTreeMap::new();
    for name in map_names {
        let Some(map) = ebpf.map_mut(&name) else { continue };
        if let Map::RingBuf(_) = map {
            let mut ring = RingBuf::try_from(map)
                .map_err(|source| KernelError::RingBuf { map: name.clone(), source: Box::new(source) })?;
            let mut records = Vec::new();
            while let Some(item) = ring.next() {
                records.push(item.to_vec());
            }
            ringbufs.insert(name, records);
        } else if let Some(entries) = maps::dump(&name, map, n_cpus)? {
            maps_out.insert(name, entries);
        }
    }
    Ok((maps_out, ringbufs))
}

/// Every dumpable map's entries and every ring buffer's records, by map name (see
/// [`TestRunOutput`]).
pub type MapsAndRings = (BTreeMap<String, MapEntries>, BTreeMap<String, Vec<Vec<u8>>>);

/// Loads one program; programs that need an attach target are skipped unless `required`.
pub(crate) fn load(name: &str, program: &mut Program, required: bool) -> Result<(), KernelError> {
    let res = match program {
        Program::KProbe(p) => p.load(),
        Program::UProbe(p) => p.load(),
        Program::TracePoint(p) => p.load(),
        Program::SocketFilter(p) => p.load(),
        Program::ReusePortSocketFilter(p) => p.load(),
        Program::Xdp(p) => p.load(),
        Program::SkMsg(p) => p.load(),
        Program::SkSkb(p) => p.load(),
        Program::CgroupSockAddr(p) => p.load(),
        Program::SockOps(p) => p.load(),
        Program::SchedClassifier(p) => p.load(),
        Program::CgroupSkb(p) => p.load(),
        Program::CgroupSysctl(p) => p.load(),
        Program::CgroupSockopt(p) => p.load(),
        Program::LircMode2(p) => p.load(),
        Program::PerfEvent(p) => p.load(),
        Program::RawTracePoint(p) => p.load(),
        Program::FlowDissector(p) => p.load(),
        Program::SkLookup(p) => p.load(),
        Program::SkReuseport(p) => p.load(),
        Program::CgroupSock(p) => p.load(),
        Program::CgroupDevice(p) => p.load(),
        Program::Lsm(_)
        | Program::LsmCgroup(_)
        | Program::BtfTracePoint(_)
        | Program::FEntry(_)
        | Program::FExit(_)
        | Program::Extension(_)
        | Program::Iter(_) => {
            if required {
                return Err(KernelError::NeedsAttachTarget {
                    program: name.to_owned(),
                    kind: format!("{:?}", program.prog_type()),
                });
            }
            return Ok(());
        }
    };
    res.map_err(|err| match err {
        ProgramError::LoadError { io_error, verifier_log } => KernelError::Rejected {
            program: name.to_owned(),
            errno: Errno::of(&io_error),
            log: verifier_log.to_string(),
        },
        source => KernelError::ProgramLoad { program: name.to_owned(), source: Box::new(source) },
    })
}

/// Whether a program needs an attach target (BTF function or hook name) to load at all.
pub(crate) fn needs_attach_target(program: &Program) -> bool {
    matches!(
        program,
        Program::Lsm(_)
            | Program::LsmCgroup(_)
            | Program::BtfTracePoint(_)
            | Program::FEntry(_)
            | Program::FExit(_)
            | Program::Extension(_)
            | Program::Iter(_)
    )
}

/// The program type's name if `BPF_PROG_TEST_RUN` cannot run it on packets.
fn not_test_runnable(program: &Program) -> Option<String> {
    match program {
        Program::Xdp(_)
        | Program::SocketFilter(_)
        | Program::ReusePortSocketFilter(_)
        | Program::SchedClassifier(_)
        | Program::CgroupSkb(_)
        | Program::FlowDissector(_) => None,
        other => Some(format!("{:?}", other.prog_type())),
    }
}

/// Runs the program once (times `repeat`) on one packet.
fn run_packet(program: &Program, packet: &[u8], repeat: u32) -> PacketOutcome {
    let mut data_out = vec![0; packet.len() + DATA_OUT_SLACK];
    let opts = TestRunOptions {
        data_in: Some(packet),
        data_out: Some(&mut data_out),
        repeat: repeat.max(1),
        ..TestRunOptions::default()
    };
    let res = match program {
        Program::Xdp(p) => p.test_run(opts),
        Program::SocketFilter(p) => p.test_run(opts),
        Program::ReusePortSocketFilter(p) => p.test_run(opts),
        Program::SchedClassifier(p) => p.test_run(opts),
        Program::CgroupSkb(p) => p.test_run(opts),
        Program::FlowDissector(p) => p.test_run(opts),
        // test_run checked the type before any packet ran.
        _ => Err(ProgramError::UnexpectedProgramType),
    };
    match res {
        Ok(out) => {
            data_out.truncate(out.data_size_out as usize);
            // Without this every outcome kept its page of slack: ~4 KiB per packet in
            // `test_run`'s list (`bench`, the differential tests).
            data_out.shrink_to_fit();
            PacketOutcome {
                result: Ok(out.return_value),
                data_out,
                // The kernel reports a u32 nanosecond average, so this never saturates.
                duration_ns: u32::try_from(out.duration.as_nanos()).unwrap_or(u32::MAX),
            }
        }
        Err(err) => {
            let reason = match &err {
                ProgramError::SyscallError(sys) => Errno::of(&sys.io_error).to_string(),
                other => other.to_string(),
            };
            PacketOutcome { result: Err(reason), data_out: Vec::new(), duration_ns: 0 }
        }
    }
}

/// A map by name, or an error listing the maps the object has.
fn find_map<'a>(ebpf: &'a Ebpf, name: &str) -> Result<&'a Map, KernelError> {
    ebpf.map(name).ok_or_else(|| map_not_found(ebpf, name))
}

fn map_not_found(ebpf: &Ebpf, name: &str) -> KernelError {
    let mut available: Vec<String> = ebpf.maps().map(|(name, _)| name.to_owned()).collect();
    available.sort();
    KernelError::MapNotFound { map: name.to_owned(), available }
}

/// Maps aya's object-level errors to the errors that say what to fix.
pub(crate) fn object_error(err: EbpfError) -> KernelError {
    match err {
        EbpfError::ParseError(ParseError::InvalidProgramSection { section }) => {
            KernelError::UnsupportedSection { section }
        }
        EbpfError::MapError(aya::maps::MapError::CreateError { name, io_error }) => {
            KernelError::MapCreate { map: name, errno: Errno::of(&io_error) }
        }
        source => KernelError::Object { source: Box::new(source) },
    }
}

/// A fresh directory in bpffs for the maps of one [`test_run`] that ask to be pinned; removed,
/// pins and all, when dropped.
#[derive(Debug)]
pub(crate) struct PinDir(pub(crate) PathBuf);

impl PinDir {
    const BPFFS: &str = "/sys/fs/bpf";

    pub(crate) fn create() -> Result<Self, KernelError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(Self::BPFFS).join(format!("duet-test-run-{}-{n}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|source| KernelError::PinDir { path: dir.clone(), source })?;
        Ok(Self(dir))
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        // Best effort: a pin that cannot be removed is a leak in bpffs, not a wrong result.
        if let Ok(entries) = std::fs::read_dir(&self.0) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}
