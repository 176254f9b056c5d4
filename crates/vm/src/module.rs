//! Loading an object file into the userspace VM: maps, global data, map references, and the
//! kernel's helpers bound to them.

use std::fmt;
use std::sync::{Arc, Mutex};

use duet_helpers::semantics::{NO_VALUES, csum_diff, format_printk, map_errno};
use duet_helpers::{DEFAULT_MAX_MAP_MEMORY, Env};
use duet_maps::{Map, MapError, MapSpec, MapType};
use duet_object::{MapOrigin, Object, ObjectProgram, ProgramKind};

use crate::helpers::{HelperError, HelperOutcome, Helpers};
use crate::http::{HttpExchange, HttpMd, HttpOutcome, HttpProgram, HttpRunState};
use crate::interp::{BPF_LOOP, BPF_MAX_LOOPS, Code, E2BIG, EINVAL, prepare};
use crate::memory::{Region, RegionKind, SharedRegions};
use crate::skb::CsumLayer;
use crate::{Config, Interpreter, Jit, LoadError, Trap};

/// Map handles given to programs by `lddw rX, map_fd N`: opaque values, never valid addresses
/// in any region, so a program that dereferences one traps.
const MAP_HANDLE_BASE: u64 = 0xffff_d0e7_0000_0000;

/// How to load a module.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Number of CPUs per-CPU maps hold values for.
    pub n_cpus: usize,
    /// Interpreter options.
    pub config: Config,
    /// Time, randomness and CPU.
    pub env: Env,
    /// Most bytes all of a module's maps may preallocate together (keys and values, every CPU's
    /// copy). duet preallocates map storage as the kernel does for most map types; this keeps a
    /// corrupt or hostile object from asking for gigabytes. Default: [`DEFAULT_MAX_MAP_MEMORY`].
    pub max_map_memory: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { n_cpus: 1, config: Config::default(), env: Env::system(), max_map_memory: DEFAULT_MAX_MAP_MEMORY }
    }
}

/// Why an object could not be loaded into the VM.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// A map could not be created.
    #[error("map `{name}`: {error}")]
    Map {
        /// The map.
        name: String,
        /// Why (part of the message, not a separate `source()`, so chains print it once).
        error: MapError,
    },
    /// A program could not be prepared.
    #[error("program `{program}`: {error}")]
    Program {
        /// The program.
        program: String,
        /// Why (part of the message, not a separate `source()`, so chains print it once).
        error: LoadError,
    },
    /// duet's verifier rejected the program.
    #[error("program `{program}` is not safe to run; duet's verifier says:\n{rejection}")]
    Rejected {
        /// The program.
        program: String,
        /// Every problem the verifier found (in the message only, so chains print it once).
        rejection: Box<duet_verifier::Rejection>,
    },
    /// The verifier does not know this program type yet.
    #[error(
        "program `{program}` has type {kind}, which duet's verifier cannot check yet (use --no-verify to run it in the checked interpreter)"
    )]
    Unverifiable {
        /// The program.
        program: String,
        /// Its hook.
        kind: String,
    },
    /// The JIT could not compile a program.
    #[error("program `{program}`: {error}")]
    Jit {
        /// The program.
        program: String,
        /// Why (part of the message, not a separate `source()`, so chains print it once).
        error: crate::JitError,
    },
    /// An http runner was asked for a program that is not an http program.
    #[error(
        "program `{program}` is a {kind} program, not an http program (duet/http_request, duet/http_response, duet/route)"
    )]
    NotHttp {
        /// The program.
        program: String,
        /// Its hook.
        kind: String,
    },
    /// A lock was poisoned by a panicking thread.
    #[error("internal lock poisoned by a panicking thread")]
    Poisoned,
    /// No map or program of that name.
    #[error("no {what} named `{name}`")]
    NotFound {
        /// `map` or `program`.
        what: &'static str,
        /// The name.
        name: String,
    },
}

/// What programs share at run time: maps, the environment, and the trace log.
struct State {
    maps: Vec<Arc<Map>>,
    /// Which maps are redirect maps (devmap, devmap_hash, cpumap, xskmap).
    redirect: Vec<bool>,
    env: Env,
    log: Mutex<Vec<String>>,
}

impl State {
    fn map(&self, handle: u64) -> Result<&Arc<Map>, HelperError> {
        handle
            .checked_sub(MAP_HANDLE_BASE)
            .and_then(|i| self.maps.get(i as usize))
            .ok_or_else(|| HelperError::Failed(format!("{handle:#x} is not a map")))
    }
}

/// An object loaded into the userspace VM: its maps exist, its map references are resolved, and
/// interpreters for its programs share the maps (also across threads).
pub struct Module {
    programs: Vec<ObjectProgram>,
    /// The object without its programs: what the verifier needs to know about the maps.
    object_maps: Object,
    /// What the verifier proved about each program it has accepted.
    verified: Mutex<Vec<Option<Arc<duet_verifier::VerifiedProgram>>>>,
    /// Native code of each program the JIT has compiled.
    compiled: Mutex<Vec<Option<Arc<crate::jit::compile::Compiled>>>>,
    map_names: Vec<String>,
    /// Why each program the VM cannot run could not be prepared (`None`: it runs).
    unloadable: Vec<Option<LoadError>>,
    state: Arc<State>,
    code: Arc<Code>,
}

impl fmt::Debug for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Module")
            .field("programs", &self.programs.iter().map(|p| &p.name).collect::<Vec<_>>())
            .field("maps", &self.map_names)
            .finish_non_exhaustive()
    }
}

impl Module {
    /// Creates the object's maps (with global data initialised) and prepares every program.
    pub fn load(object: &Object, options: LoadOptions) -> Result<Self, ModuleError> {
        let mut budget = options.max_map_memory;
        for def in &object.maps {
            let per_cpu = matches!(def.map_type, 5 | 6 | 10);
            let copies = if per_cpu { options.n_cpus.max(1) as u64 } else { 1 };
            let entry = u64::from(def.key_size) + u64::from(def.value_size).div_ceil(8) * 8 * copies;
            let bytes = u64::from(def.max_entries).saturating_mul(entry.max(1));
            budget = budget.checked_sub(bytes).ok_or_else(|| ModuleError::Map {
                name: def.name.clone(),
                error: MapError::Invalid(format!(
                    "{} entries would need about {bytes} bytes, past the module's limit of {} bytes (LoadOptions::max_map_memory)",
                    def.max_entries, options.max_map_memory
                )),
            })?;
        }
        let mut maps = Vec::with_capacity(object.maps.len());
        let mut redirect = Vec::with_capacity(object.maps.len());
        let mut regions = Vec::new();
        for def in &object.maps {
            let map_err = |error| ModuleError::Map { name: def.name.clone(), error };
            // Redirect targets (devices, CPUs, AF_XDP sockets) have no meaning in userspace; their
            // maps keep entries like a hash of index to value so `bpf_redirect_map` can tell
            // present from absent slots, as the kernel's lookup does.
            let is_redirect_map = REDIRECT_MAP_TYPES.contains(&def.map_type);
            let raw_type = if is_redirect_map { MapType::Hash.raw() } else { def.map_type };
            redirect.push(is_redirect_map);
            let map_type = MapType::from_raw(raw_type).ok_or_else(|| {
                map_err(MapError::Unsupported(format!(
                    "map type {} is not available in duet's userspace VM",
                    duet_object::map_type_name(def.map_type)
                )))
            })?;
            let spec = MapSpec {
                name: def.name.clone(),
                map_type,
                key_size: def.key_size,
                value_size: def.value_size,
                max_entries: def.max_entries,
                flags: def.flags,
            };
            let map = Map::new(spec, options.n_cpus.max(1)).map_err(map_err)?;
            if let Some(data) = &def.initial_data {
                let mut value = data.clone();
                value.resize(def.value_size as usize, 0);
                map.update(&0u32.to_le_bytes(), &value, 0, None).map_err(map_err)?;
            }
            // Programs may touch map storage only through value pointers and ring buffer records;
            // read-only global data stays read-only, prog_array slots are not memory at all.
            if map_type != MapType::ProgArray && !is_redirect_map {
                let writable = !(def.origin == MapOrigin::Rodata || def.flags & duet_maps::BPF_F_RDONLY_PROG != 0);
                for (ptr, len) in map.storage_regions() {
                    // SAFETY: `storage_regions` promises the ranges stay valid and in place for
                    // the map's lifetime; the module keeps every map alive (in `State`) for as
                    // long as any interpreter holding these regions exists.
                    regions.push(unsafe { Region::from_raw(ptr.as_ptr(), len, writable, RegionKind::Map) });
                }
            }
            maps.push(Arc::new(map));
        }
        let state = Arc::new(State { maps, redirect, env: options.env.clone(), log: Mutex::new(Vec::new()) });
        let helpers = kernel_helpers(&state, &object.programs);
        let mut prepared = Vec::with_capacity(object.programs.len());
        let mut unloadable = Vec::with_capacity(object.programs.len());
        for p in &object.programs {
            // A program the VM cannot run is refused when it is asked for (or set in a
            // prog_array), not for the whole object: the others load and run without it. Its
            // slot holds a lone `exit` that nothing can reach.
            match prepare(&p.program, &helpers, |pc, insn| resolve(&state, pc, insn)) {
                Ok(code) => {
                    prepared.push(code);
                    unloadable.push(None);
                }
                Err(error) => {
                    prepared.push(Box::new([duet_isa::Insn::new(duet_isa::Op::Exit)]));
                    unloadable.push(Some(error));
                }
            }
        }
        let code = Arc::new(Code::new(prepared, helpers, SharedRegions(regions), options.config));
        Ok(Module {
            programs: object.programs.clone(),
            object_maps: Object { license: object.license.clone(), programs: Vec::new(), maps: object.maps.clone() },
            verified: Mutex::new(vec![None; object.programs.len()]),
            compiled: Mutex::new(vec![None; object.programs.len()]),
            map_names: object.maps.iter().map(|m| m.name.clone()).collect(),
            unloadable,
            state,
            code,
        })
    }

    /// An interpreter for program `name`, sharing this module's maps, after duet's verifier has
    /// proved the program (and every program it can tail-call into) safe.
    pub fn interpreter(&self, name: &str) -> Result<Interpreter, ModuleError> {
        let entry = self.runnable_index(name)?;
        self.verify(entry)?;
        Ok(self.interpreter_at(entry, true))
    }

    fn interpreter_at(&self, entry: usize, verified: bool) -> Interpreter {
        Interpreter::from_code(Arc::clone(&self.code), entry, verified)
            .with_http_program(http_program(&self.programs[entry].kind))
    }

    /// A runner for http program `name` (`duet/http_request`, `duet/http_response` or
    /// `duet/route`) on `engine`, after duet's verifier has proved it safe; it shares this
    /// module's maps. Make one per worker thread: a runner is `Send`, not shared; the module
    /// itself is `Send + Sync` (share it in an `Arc`), and JIT code is compiled once and shared
    /// by every runner of the same program.
    pub fn http_runner(&self, name: &str, engine: Engine) -> Result<HttpRunner, ModuleError> {
        let entry = self.runnable_index(name)?;
        let kind = &self.programs[entry].kind;
        let Some(program) = http_program(kind) else {
            return Err(ModuleError::NotHttp { program: name.to_owned(), kind: format!("{kind:?}") });
        };
        let engine = match engine {
            Engine::Interpreter => RunnerEngine::Interpreter(self.interpreter(name)?),
            Engine::Jit => RunnerEngine::Jit(self.jit(name)?),
        };
        Ok(HttpRunner { program, engine })
    }

    /// Program `name` compiled to native code (see [`Jit`]), sharing this module's maps, after
    /// duet's verifier has proved it (and every program it can tail-call into) safe. Compiled
    /// code is cached: later calls for the same program only clone it.
    pub fn jit(&self, name: &str) -> Result<Jit, ModuleError> {
        let entry = self.runnable_index(name)?;
        let targets = self.verify(entry)?;
        let verified = self.verified.lock().map_err(|_| ModuleError::Poisoned)?.clone();
        let mut compiled = self.compiled.lock().map_err(|_| ModuleError::Poisoned)?;
        let mut types = vec![None; self.programs.len()];
        let mut code = vec![None; self.programs.len()];
        for index in targets {
            let Some(program) = &verified[index] else { continue };
            if compiled[index].is_none() {
                let c = Jit::compile_program(&self.code, index, program, &self.known_maps(), &self.state.env)
                    .map_err(|error| ModuleError::Jit { program: self.programs[index].name.clone(), error })?;
                compiled[index] = Some(c);
            }
            code[index] = compiled[index].clone();
            types[index] = Some(program.program_type());
        }
        Ok(Jit::from_parts(Arc::clone(&self.code), code, types, entry))
    }

    /// The maps compiled code may reach directly (see [`crate::jit::KnownMap`]): every map but
    /// prog arrays and redirect maps, whose helpers do more than the map's own methods. Arrays with 4-byte keys whose values sit at a fixed stride get inline lookups,
    /// checked against `lookup_ptr` itself so the inline lookup returns exactly the pointer the
    /// helper would.
    fn known_maps(&self) -> Vec<crate::jit::KnownMap> {
        let cpu = self.state.env.cpu;
        let mut out = Vec::new();
        for (index, map) in self.state.maps.iter().enumerate() {
            let spec = map.spec();
            if spec.map_type == MapType::ProgArray || self.state.redirect[index] {
                continue;
            }
            let inline = (matches!(spec.map_type, MapType::Array | MapType::PerCpuArray)
                && spec.key_size == 4
                && spec.max_entries > 0)
                .then(|| {
                    let at = |i: u32| map.lookup_ptr(&i.to_le_bytes(), cpu as usize).map(|p| p.as_ptr() as u64);
                    let (base, last) = (at(0)?, at(spec.max_entries - 1)?);
                    let stride = if spec.max_entries > 1 { at(1).map_or(0, |p| p.wrapping_sub(base)) } else { 8 };
                    (last == base.wrapping_add(stride.wrapping_mul(u64::from(spec.max_entries - 1))) && stride != 0)
                        .then_some(crate::jit::InlineArray { base, stride, max_entries: spec.max_entries })
                })
                .flatten();
            out.push(crate::jit::KnownMap {
                handle: MAP_HANDLE_BASE + index as u64,
                map: Arc::clone(map),
                cpu,
                inline,
            });
        }
        out
    }

    /// An interpreter for program `name` without verifying it first. The interpreter still checks
    /// every access at run time, so an unsafe program traps; this exists for `duet run
    /// --no-verify` and for programs the verifier cannot yet judge.
    pub fn interpreter_unverified(&self, name: &str) -> Result<Interpreter, ModuleError> {
        let entry = self.runnable_index(name)?;
        Ok(self.interpreter_at(entry, false))
    }

    /// Verifies program `entry` (once; the result is remembered) and, when it tail-calls, every
    /// other program of the module, since a prog_array can point at any of them.
    fn verify(&self, entry: usize) -> Result<Vec<usize>, ModuleError> {
        let tail_calls =
            self.programs[entry].program.insns().iter().any(|(_, i)| i.op == duet_isa::Op::Call && i.imm == 12);
        // A tail call may reach any program a prog_array can hold: every one the VM can run.
        let targets: Vec<usize> = if tail_calls {
            (0..self.programs.len()).filter(|&i| i == entry || self.unloadable[i].is_none()).collect()
        } else {
            vec![entry]
        };
        for &index in &targets {
            let mut verified = self.verified.lock().map_err(|_| ModuleError::Poisoned)?;
            if verified[index].is_some() {
                continue;
            }
            let program = &self.programs[index];
            let Some(ctx) = duet_verifier::VerifyContext::for_object_program(&self.object_maps, program) else {
                return Err(ModuleError::Unverifiable {
                    program: program.name.clone(),
                    kind: format!("{:?}", program.kind),
                });
            };
            let proof = duet_verifier::verify(&program.program, &ctx).map_err(|rejection| ModuleError::Rejected {
                program: program.name.clone(),
                rejection: Box::new(rejection),
            })?;
            self.code.set_verified(index, &proof);
            verified[index] = Some(Arc::new(proof));
        }
        Ok(targets)
    }

    /// The programs, in the object's order.
    pub fn programs(&self) -> &[ObjectProgram] {
        &self.programs
    }

    /// The hook of program `name`.
    pub fn program_kind(&self, name: &str) -> Result<&ProgramKind, ModuleError> {
        Ok(&self.programs[self.program_index(name)?].kind)
    }

    fn program_index(&self, name: &str) -> Result<usize, ModuleError> {
        self.programs
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| ModuleError::NotFound { what: "program", name: name.to_owned() })
    }

    /// [`Self::program_index`] of a program the VM can run; for one it cannot, why.
    fn runnable_index(&self, name: &str) -> Result<usize, ModuleError> {
        let index = self.program_index(name)?;
        match &self.unloadable[index] {
            None => Ok(index),
            Some(error) => Err(ModuleError::Program { program: name.to_owned(), error: error.clone() }),
        }
    }

    /// Maps with their names, in the object's order.
    pub fn maps(&self) -> impl Iterator<Item = (&str, &Arc<Map>)> {
        self.map_names.iter().map(String::as_str).zip(self.state.maps.iter())
    }

    /// The map called `name`.
    pub fn map(&self, name: &str) -> Result<&Arc<Map>, ModuleError> {
        self.maps()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| m)
            .ok_or_else(|| ModuleError::NotFound { what: "map", name: name.to_owned() })
    }

    /// Points slot `index` of prog_array `map` at program `program` (for tail calls).
    pub fn set_prog_array(&self, map: &str, index: u32, program: &str) -> Result<(), ModuleError> {
        let target = self.runnable_index(program)? as u32;
        self.map(map)?
            .update(&index.to_le_bytes(), &target.to_le_bytes(), 0, None)
            .map_err(|error| ModuleError::Map { name: map.to_owned(), error })
    }

    /// Takes the `bpf_trace_printk` lines written so far.
    pub fn take_log(&self) -> Vec<String> {
        self.state.log.lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default()
    }
}

/// Which engine runs a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Engine {
    /// The checked reference interpreter.
    Interpreter,
    /// The Cranelift JIT.
    Jit,
}

enum RunnerEngine {
    Interpreter(Interpreter),
    Jit(Jit),
}

/// Runs one http program of a [`Module`] on HTTP exchanges, in the interpreter or the JIT
/// ([`Module::http_runner`]). One per worker thread.
pub struct HttpRunner {
    program: HttpProgram,
    engine: RunnerEngine,
}

impl fmt::Debug for HttpRunner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let engine = match self.engine {
            RunnerEngine::Interpreter(_) => Engine::Interpreter,
            RunnerEngine::Jit(_) => Engine::Jit,
        };
        f.debug_struct("HttpRunner").field("program", &self.program).field("engine", &engine).finish()
    }
}

impl HttpRunner {
    /// The program's type.
    pub fn program(&self) -> HttpProgram {
        self.program
    }

    /// Runs the program on one exchange: `md` is its context, `ex` the exchange its helpers
    /// read and change. Decode the outcome with [`HttpOutcome::filter_verdict`] (request and
    /// response filters) or [`HttpOutcome::route_choice`] (route programs). A trap is a fault of
    /// the program.
    pub fn run(&mut self, md: &HttpMd, ex: &mut dyn HttpExchange) -> Result<HttpOutcome, Trap> {
        let mut state = HttpRunState::new(self.program);
        let r0 = match &mut self.engine {
            RunnerEngine::Interpreter(vm) => vm.run_http_with(md, &mut state, ex)?,
            RunnerEngine::Jit(jit) => jit.run_http_with(md, &mut state, ex)?,
        };
        Ok(HttpOutcome { ret: r0 as i64, responded: state.responded(), mutations: state.mutations() })
    }
}

// Compile-time proof of the threading model `http_runner` documents.
const _: () = {
    const fn send<T: Send>() {}
    const fn sync<T: Send + Sync>() {}
    send::<HttpRunner>();
    sync::<Module>();
};

/// The http program type of an object's program kind.
fn http_program(kind: &ProgramKind) -> Option<HttpProgram> {
    duet_verifier::ProgramType::from_kind(kind).and_then(HttpProgram::from_type)
}

/// Resolves an `lddw` pseudo source to the value the program sees.
fn resolve(state: &State, pc: usize, insn: &duet_isa::Insn) -> Result<Option<u64>, LoadError> {
    let index = insn.imm as u32 as usize;
    let unresolved = |what: String| LoadError::Unresolved { pc, what };
    match insn.pseudo_src() {
        Some(duet_isa::PseudoSrc::MapFd | duet_isa::PseudoSrc::MapIdx) => {
            if index >= state.maps.len() {
                return Err(unresolved(format!("map reference {index} is out of range")));
            }
            Ok(Some(MAP_HANDLE_BASE + index as u64))
        }
        Some(duet_isa::PseudoSrc::MapValue | duet_isa::PseudoSrc::MapIdxValue) => {
            let offset = insn.imm as u64 >> 32;
            let map =
                state.maps.get(index).ok_or_else(|| unresolved(format!("map reference {index} is out of range")))?;
            if offset >= u64::from(map.spec().value_size) {
                return Err(unresolved(format!(
                    "offset {offset} is past the end of map `{}`'s value",
                    map.spec().name
                )));
            }
            let value = map
                .lookup_ptr(&0u32.to_le_bytes(), 0)
                .ok_or_else(|| unresolved(format!("map `{}` has no value to point into", map.spec().name)))?;
            Ok(Some(value.as_ptr() as u64 + offset))
        }
        Some(other) => Err(unresolved(format!("lddw of a {other:?} is not supported in duet's userspace VM"))),
        None => Ok(None),
    }
}

/// devmap, cpumap, xskmap, devmap_hash.
const REDIRECT_MAP_TYPES: [u32; 4] = [14, 16, 17, 25];

pub(crate) const EAGAIN: i64 = -11;
const XDP_ABORTED: u64 = 0;
const XDP_REDIRECT: u64 = 4;

fn ret(v: i64) -> Result<HelperOutcome, HelperError> {
    Ok(HelperOutcome::Return(v as u64))
}

/// The kernel helpers duet provides, by their kernel ids, bound to one module's state.
fn kernel_helpers(state: &Arc<State>, _programs: &[ObjectProgram]) -> Helpers {
    let mut h = Helpers::new();
    let s = Arc::clone(state);
    h.register(1, move |cx, a| {
        // bpf_map_lookup_elem(map, key) -> value pointer or NULL
        let map = s.map(a[0])?;
        if NO_VALUES.contains(&map.map_type()) {
            return Err(HelperError::Failed(format!(
                "map_lookup_elem is not allowed on {} maps",
                map.map_type().name()
            )));
        }
        let key = cx.slice(2, a[1], map.spec().key_size as usize)?;
        let cpu = s.env.cpu as usize;
        Ok(HelperOutcome::Return(map.lookup_ptr(key, cpu).map_or(0, |p| p.as_ptr() as u64)))
    });
    let s = Arc::clone(state);
    h.register(2, move |cx, a| {
        // bpf_map_update_elem(map, key, value, flags) -> 0 or -errno
        let map = s.map(a[0])?;
        let spec = map.spec();
        let key = cx.slice(2, a[1], spec.key_size as usize)?;
        let value = cx.slice(3, a[2], spec.value_size as usize)?;
        ret(map_errno(map.update(key, value, a[3], Some(s.env.cpu as usize))))
    });
    let s = Arc::clone(state);
    h.register(3, move |cx, a| {
        // bpf_map_delete_elem(map, key) -> 0 or -errno
        let map = s.map(a[0])?;
        let key = cx.slice(2, a[1], map.spec().key_size as usize)?;
        ret(map_errno(map.delete(key)))
    });
    for id in [5, 125] {
        // bpf_ktime_get_ns, bpf_ktime_get_boot_ns
        let s = Arc::clone(state);
        h.register(id, move |_, _| Ok(HelperOutcome::Return((s.env.clock)())));
    }
    let s = Arc::clone(state);
    h.register(6, move |cx, a| {
        // bpf_trace_printk(fmt, fmt_size, arg1, arg2, arg3) -> bytes written
        let fmt = cx.slice(1, a[0], a[1] as usize)?;
        let line = format_printk(fmt, &[a[2], a[3], a[4]]);
        let n = line.len() as u64;
        if let Ok(mut log) = s.log.lock() {
            log.push(line);
        }
        Ok(HelperOutcome::Return(n))
    });
    let s = Arc::clone(state);
    h.register(7, move |_, _| Ok(HelperOutcome::Return(u64::from((s.env.random)()))));
    let s = Arc::clone(state);
    h.register(8, move |_, _| Ok(HelperOutcome::Return(u64::from(s.env.cpu))));
    let s = Arc::clone(state);
    h.register(12, move |_, a| {
        // bpf_tail_call(ctx, prog_array, index)
        let map = s.map(a[1])?;
        if map.map_type() != MapType::ProgArray {
            return Err(HelperError::Failed("tail_call needs a prog_array map".into()));
        }
        Ok(map.prog_at(a[2] as u32).map_or(HelperOutcome::Fallthrough, HelperOutcome::TailCall))
    });
    h.register(BPF_LOOP as u32, |_, a| {
        // bpf_loop(nr_loops, callback_fn, callback_ctx, flags): the engine makes the calls.
        if a[3] != 0 {
            return ret(EINVAL);
        }
        let count = a[0] as u32;
        if count > BPF_MAX_LOOPS {
            return ret(E2BIG);
        }
        let callback = crate::interp::func_target(a[1])
            .ok_or_else(|| HelperError::Failed("argument 2 is not a function of the program".into()))?;
        Ok(HelperOutcome::Loop { callback, ctx: a[2], count })
    });
    h.register(23, |cx, a| {
        // bpf_redirect(ifindex, flags): in XDP, XDP_REDIRECT or XDP_ABORTED for unknown flags; in
        // TC, TC_ACT_REDIRECT or TC_ACT_SHOT for flags other than BPF_F_INGRESS.
        const TC_ACT_SHOT: u64 = 2;
        const TC_ACT_REDIRECT: u64 = 7;
        const BPF_F_INGRESS: u64 = 1;
        Ok(HelperOutcome::Return(match cx.skb_hook() {
            Some(_) if a[1] & !BPF_F_INGRESS != 0 => TC_ACT_SHOT,
            Some(_) => TC_ACT_REDIRECT,
            None if a[1] != 0 => XDP_ABORTED,
            None => XDP_REDIRECT,
        }))
    });
    // The skb helpers: bpf_skb_store_bytes, bpf_l3/l4_csum_replace, bpf_skb_load_bytes.
    h.register(9, |cx, a| ret(cx.skb_store_bytes(a[1], a[2], a[3], a[4])?));
    h.register(10, |cx, a| ret(cx.skb_csum_replace(CsumLayer::L3, a[1], a[2], a[3], a[4])?));
    h.register(11, |cx, a| ret(cx.skb_csum_replace(CsumLayer::L4, a[1], a[2], a[3], a[4])?));
    h.register(26, |cx, a| ret(cx.skb_load_bytes(a[1], a[2], a[3])?));
    let s = Arc::clone(state);
    h.register(51, move |_, a| {
        // bpf_redirect_map(map, key, flags): XDP_REDIRECT when the slot is set, else the action
        // in the flags' low two bits (BPF_F_BROADCAST redirects regardless).
        const ACTION_MASK: u64 = 3;
        const BROADCAST: u64 = 1 << 3;
        const EXCLUDE_INGRESS: u64 = 1 << 4;
        let index = a[0].checked_sub(MAP_HANDLE_BASE).map_or(usize::MAX, |i| i as usize);
        let map = s.map(a[0])?;
        if !s.redirect.get(index).copied().unwrap_or(false) {
            return Err(HelperError::Failed(format!(
                "redirect_map needs a devmap, cpumap or xskmap, not `{}`",
                map.spec().name
            )));
        }
        if a[2] & !(ACTION_MASK | BROADCAST | EXCLUDE_INGRESS) != 0 {
            return Ok(HelperOutcome::Return(XDP_ABORTED));
        }
        let key = (a[1] as u32).to_le_bytes();
        let present = map.spec().key_size == 4 && map.lookup_ptr(&key, 0).is_some();
        Ok(HelperOutcome::Return(if present || a[2] & BROADCAST != 0 { XDP_REDIRECT } else { a[2] & ACTION_MASK }))
    });
    h.register(28, |cx, a| {
        // bpf_csum_diff(from, from_size, to, to_size, seed)
        let (from_size, to_size) = (a[1], a[3]);
        if (from_size | to_size) % 4 != 0 || from_size + to_size > 512 {
            return ret(EINVAL);
        }
        let from = if from_size > 0 { cx.slice(1, a[0], from_size as usize)?.to_vec() } else { Vec::new() };
        let to = if to_size > 0 { cx.slice(3, a[2], to_size as usize)? } else { &[][..] };
        Ok(HelperOutcome::Return(csum_diff(&from, to, a[4] as u32)))
    });
    crate::http::register_helpers(&mut h);
    h.register(44, |cx, a| ret(if cx.xdp_adjust_head(i64::from(a[1] as i32)) { 0 } else { EINVAL }));
    h.register(65, |cx, a| ret(if cx.xdp_adjust_tail(i64::from(a[1] as i32)) { 0 } else { EINVAL }));
    h.register(54, |cx, a| ret(cx.xdp_adjust_meta(i64::from(a[1] as i32)).map_or_else(|e| e, |()| 0)));
    let s = Arc::clone(state);
    h.register(130, move |cx, a| {
        // bpf_ringbuf_output(ringbuf, data, size, flags) -> 0 or -errno
        let map = s.map(a[0])?;
        let data = cx.slice(2, a[1], a[2] as usize)?;
        ret(map.ringbuf_output(data).map_or(EAGAIN, |()| 0))
    });
    let s = Arc::clone(state);
    h.register(131, move |_, a| {
        // bpf_ringbuf_reserve(ringbuf, size, flags) -> record pointer or NULL
        let map = s.map(a[0])?;
        if a[2] != 0 {
            return Ok(HelperOutcome::Return(0));
        }
        Ok(HelperOutcome::Return(map.ringbuf_reserve(a[1]).map_or(0, |p| p.as_ptr() as u64)))
    });
    for (id, discard) in [(132, false), (133, true)] {
        // bpf_ringbuf_submit(record, flags), bpf_ringbuf_discard(record, flags)
        let s = Arc::clone(state);
        h.register(id, move |_, a| {
            let ring = s.maps.iter().find(|m| {
                m.map_type() == MapType::RingBuf
                    && m.storage_regions().iter().any(|(p, len)| {
                        let start = p.as_ptr() as u64;
                        a[0] >= start && a[0] < start + *len as u64
                    })
            });
            let (Some(ring), Some(record)) = (ring, std::ptr::NonNull::new(a[0] as *mut u8)) else {
                return Err(HelperError::Failed(format!("{:#x} is not a reserved ring buffer record", a[0])));
            };
            ring.ringbuf_submit(record, discard).map_err(|e| HelperError::Failed(e.to_string()))?;
            Ok(HelperOutcome::Return(0))
        });
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The helpers a module registers are exactly the helper table's rows marked `vm`, so the
    /// verifier's prototypes, the VM's names and what the VM runs cannot drift apart.
    #[test]
    fn registered_helpers_are_the_tables() {
        let state = Arc::new(State {
            maps: Vec::new(),
            redirect: Vec::new(),
            env: Env::deterministic(),
            log: Mutex::default(),
        });
        let registered: Vec<u32> = kernel_helpers(&state, &[]).ids().collect();
        let provided: Vec<u32> = duet_helpers::HELPERS.iter().filter(|h| h.vm).map(|h| h.id).collect();
        for id in &registered {
            let row = duet_helpers::helper(i64::from(*id));
            assert!(
                row.is_some_and(|h| h.vm),
                "helper {id} is registered but its table row is missing or not marked vm"
            );
        }
        assert_eq!(registered, provided, "the table marks as provided a helper the VM does not register");
        // Those the VM refuses are named in its load errors.
        for h in duet_helpers::HELPERS.iter().filter(|h| !h.vm) {
            assert_eq!(crate::kernel_helper_name(i64::from(h.id)), Some(h.kernel_name()));
        }
    }
}
