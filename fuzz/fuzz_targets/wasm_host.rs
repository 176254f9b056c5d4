//! Generated Wasm modules -> `duet_wasm::WasmModule::load` -> `Executor::run_xdp`, with every
//! host import called with hostile arguments. Two generators, chosen by the input's first byte:
//!
//! - **encoded**: the module is built with `wasm-encoder` from a structured input. It imports all
//!   of `duet`'s imports (the http ones only at ABI version 2), exports `memory`,
//!   `duet_abi_version`, a `duet_buffer` that returns a valid pointer (a hostile one for about one
//!   input in sixteen), and up to three `duet_prog_xdp_*` programs, each a list of import calls
//!   whose arguments are fuzzer-chosen `i32`/`i64` values (map ids, pointers near the packet or the
//!   end of memory, negative lengths, huge ids, bad flags), optionally storing each result into
//!   memory so later calls read it.
//! - **smith**: `wasm-smith` generates the module with duet's imports as the only available
//!   imports and the ABI's exports, so its random code calls the imports with whatever values it
//!   computes. The bodies of `duet_abi_version` and `duet_buffer` are then replaced (a re-encode
//!   through `wasm_encoder::reencode`) by constants, so that the module gets past the ABI check
//!   and its programs run.
//!
//! Both carry a `duet.maps` manifest with a hash map, an array, a per-CPU array and a ring buffer.
//! Every program runs on the input's packet twice, with a 128 KiB memory limit and a 50 ms
//! deadline. Checks: no panic and no memory error in the host; load errors and traps
//! (`WasmError`) are fine.
#![no_main]

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use duet_helpers::Env;
use duet_wasm::{WasmModule, WasmOptions};
use libfuzzer_sys::fuzz_target;
use wasm_encoder::reencode::Reencode;
use wasm_encoder::{
    CodeSection, CustomSection, EntityType, ExportKind, ExportSection, Function, FunctionSection, ImportSection,
    Instruction, MemArg, MemorySection, MemoryType, Module, TypeSection, ValType,
};

use ValType::{I32, I64};

/// The duet imports: name, parameters, result. Keep in step with `crates/wasm/src/host.rs`.
const IMPORTS: &[(&str, &[ValType], Option<ValType>)] = &[
    ("map_lookup", &[I32, I32, I32], Some(I32)),
    ("map_update", &[I32, I32, I32, I64], Some(I64)),
    ("map_delete", &[I32, I32], Some(I64)),
    ("map_add_u64", &[I32, I32, I32, I64], Some(I64)),
    ("ktime_get_ns", &[], Some(I64)),
    ("get_prandom_u32", &[], Some(I32)),
    ("get_smp_processor_id", &[], Some(I32)),
    ("trace", &[I32, I32], None),
    ("ringbuf_output", &[I32, I32, I32, I64], Some(I64)),
    // ABI version 2 only.
    ("http_field", &[I32, I32, I32], Some(I64)),
    ("http_header_get", &[I32, I32, I32, I32], Some(I64)),
    ("http_header_set", &[I32, I32, I32, I32], Some(I64)),
    ("http_header_add", &[I32, I32, I32, I32], Some(I64)),
    ("http_header_remove", &[I32, I32], Some(I64)),
    ("http_respond", &[I32, I32, I32], Some(I64)),
];
const V1_IMPORTS: usize = 9;

const MANIFEST: &str = r#"[{"name":"H","type":1,"key_size":4,"value_size":8,"max_entries":4,"flags":0},{"name":"A","type":2,"key_size":4,"value_size":8,"max_entries":4,"flags":0},{"name":"P","type":6,"key_size":4,"value_size":8,"max_entries":2,"flags":0},{"name":"R","type":27,"key_size":0,"value_size":0,"max_entries":4096,"flags":0}]"#;

const PAGE: i64 = 65536;
/// Where `duet_buffer` points unless the input asks for a hostile pointer.
const VALID_BUFFER: i64 = 1024;
const INTERESTING: &[i64] = &[
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    16,
    255,
    1024,
    4095,
    4096,
    PAGE - 8,
    PAGE - 4,
    PAGE - 1,
    PAGE,
    PAGE + 1,
    2 * PAGE,
    i32::MAX as i64,
    i32::MIN as i64,
    -1,
    -2,
    -8,
    u32::MAX as i64,
    i64::MAX,
    i64::MIN,
    1 << 32,
];

#[derive(Arbitrary, Debug)]
enum Arg {
    /// A map id: 0-3 are the manifest's maps, 4 is none.
    Map(u8),
    /// A small value: a short length, a pointer into the first bytes.
    Small(u8),
    /// A pointer near the buffer `duet_buffer` returned (where the packet is).
    NearBuffer(i8),
    Interesting(u8),
    Raw(i64),
}

#[derive(Arbitrary, Debug)]
struct Call {
    import: u8,
    args: [Arg; 4],
    /// Store the result at this (small) address instead of dropping it.
    store_at: Option<u8>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    v2: bool,
    pages: u8,
    /// Below 16: `duet_buffer` returns `buffer` and the memory may be empty; otherwise it returns
    /// a valid pointer into a memory of one or two pages.
    hostile: u8,
    buffer: Arg,
    programs: Vec<Vec<Call>>,
    packet: Vec<u8>,
}

fn value(arg: &Arg, buffer: i64) -> i64 {
    match *arg {
        Arg::Map(v) => i64::from(v % 5),
        Arg::Small(v) => i64::from(v),
        Arg::NearBuffer(d) => buffer.wrapping_add(i64::from(d)),
        Arg::Interesting(i) => INTERESTING[usize::from(i) % INTERESTING.len()],
        Arg::Raw(v) => v,
    }
}

fn build(input: &Input) -> (Vec<u8>, usize) {
    let n_imports = if input.v2 { IMPORTS.len() } else { V1_IMPORTS };
    let hostile = input.hostile < 16;
    let buffer = if hostile { value(&input.buffer, 0) } else { VALID_BUFFER };
    let mut types = TypeSection::new();
    for (_, params, result) in &IMPORTS[..n_imports] {
        types.ty().function(params.iter().copied(), result.iter().copied());
    }
    let t_version = n_imports as u32;
    types.ty().function([], [I32]);
    let t_buffer = t_version + 1;
    types.ty().function([I32], [I32]);
    let t_prog = t_version + 2;
    types.ty().function([I32, I32], [I32]);

    let mut imports = ImportSection::new();
    for (i, (name, _, _)) in IMPORTS[..n_imports].iter().enumerate() {
        imports.import("duet", name, EntityType::Function(i as u32));
    }

    let programs: Vec<&Vec<Call>> = input.programs.iter().take(3).collect();
    let mut functions = FunctionSection::new();
    functions.function(t_version);
    functions.function(t_buffer);
    for _ in &programs {
        functions.function(t_prog);
    }

    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: if hostile { u64::from(input.pages % 3) } else { 1 + u64::from(input.pages % 2) },
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });

    let mut exports = ExportSection::new();
    exports.export("memory", ExportKind::Memory, 0);
    exports.export("duet_abi_version", ExportKind::Func, n_imports as u32);
    exports.export("duet_buffer", ExportKind::Func, n_imports as u32 + 1);
    for i in 0..programs.len() {
        exports.export(&format!("duet_prog_xdp_p{i}"), ExportKind::Func, n_imports as u32 + 2 + i as u32);
    }

    let mut code = CodeSection::new();
    let mut f = Function::new([]);
    f.instruction(&Instruction::I32Const(if input.v2 { 2 } else { 1 }));
    f.instruction(&Instruction::End);
    code.function(&f);
    let mut f = Function::new([]);
    f.instruction(&Instruction::I32Const(buffer as i32));
    f.instruction(&Instruction::End);
    code.function(&f);
    for calls in &programs {
        let mut f = Function::new([]);
        for call in calls.iter().take(32) {
            let index = usize::from(call.import) % n_imports;
            let (_, params, result) = IMPORTS[index];
            if let (Some(at), Some(ty)) = (call.store_at, result) {
                f.instruction(&Instruction::I32Const(i32::from(at)));
                let _ = ty;
            }
            for (param, arg) in params.iter().zip(&call.args) {
                let v = value(arg, buffer);
                f.instruction(&match param {
                    I32 => Instruction::I32Const(v as i32),
                    _ => Instruction::I64Const(v),
                });
            }
            f.instruction(&Instruction::Call(index as u32));
            match (call.store_at, result) {
                (Some(_), Some(I32)) => {
                    f.instruction(&Instruction::I32Store(MemArg { offset: 0, align: 0, memory_index: 0 }))
                }
                (Some(_), Some(_)) => {
                    f.instruction(&Instruction::I64Store(MemArg { offset: 0, align: 0, memory_index: 0 }))
                }
                (None, Some(_)) => f.instruction(&Instruction::Drop),
                (_, None) => &mut f,
            };
        }
        // The verdict: the packet's length, as a hostile return value too.
        f.instruction(&Instruction::LocalGet(1));
        f.instruction(&Instruction::End);
        code.function(&f);
    }

    let mut module = Module::new();
    module.section(&types);
    module.section(&imports);
    module.section(&functions);
    module.section(&memories);
    module.section(&exports);
    module.section(&code);
    module.section(&CustomSection { name: Cow::Borrowed("duet.maps"), data: Cow::Borrowed(MANIFEST.as_bytes()) });
    (module.finish(), programs.len())
}

/// The imports `wasm-smith` may call: duet's, as a module of imports.
fn smith_imports(v2: bool) -> Vec<u8> {
    let n_imports = if v2 { IMPORTS.len() } else { V1_IMPORTS };
    let mut types = TypeSection::new();
    let mut imports = ImportSection::new();
    for (i, (name, params, result)) in IMPORTS[..n_imports].iter().enumerate() {
        types.ty().function(params.iter().copied(), result.iter().copied());
        imports.import("duet", name, EntityType::Function(i as u32));
    }
    let mut module = Module::new();
    module.section(&types);
    module.section(&imports);
    module.finish()
}

/// The exports the ABI asks for, as a module whose export types `wasm-smith` copies.
fn smith_exports(n_programs: usize) -> Vec<u8> {
    let mut types = TypeSection::new();
    types.ty().function([], [I32]);
    types.ty().function([I32], [I32]);
    types.ty().function([I32, I32], [I32]);
    let mut functions = FunctionSection::new();
    functions.function(0);
    functions.function(1);
    for _ in 0..n_programs {
        functions.function(2);
    }
    let mut memories = MemorySection::new();
    memories.memory(MemoryType { minimum: 1, maximum: Some(2), memory64: false, shared: false, page_size_log2: None });
    let mut exports = ExportSection::new();
    exports.export("memory", ExportKind::Memory, 0);
    exports.export("duet_abi_version", ExportKind::Func, 0);
    exports.export("duet_buffer", ExportKind::Func, 1);
    for i in 0..n_programs {
        exports.export(&format!("duet_prog_xdp_p{i}"), ExportKind::Func, 2 + i as u32);
    }
    let mut code = CodeSection::new();
    for _ in 0..2 + n_programs {
        let mut f = Function::new([]);
        f.instruction(&Instruction::Unreachable);
        f.instruction(&Instruction::End);
        code.function(&f);
    }
    let mut module = Module::new();
    module.section(&types);
    module.section(&functions);
    module.section(&memories);
    module.section(&exports);
    module.section(&code);
    module.finish()
}

/// Re-encodes a module, replacing the bodies of two functions by constants.
struct Patch {
    /// Index of the next defined function the code section yields.
    next: u32,
    /// (function index, constant it returns).
    constants: [(u32, i32); 2],
}

impl Reencode for Patch {
    type Error = std::convert::Infallible;

    fn parse_function_body(
        &mut self,
        code: &mut CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), wasm_encoder::reencode::Error<Self::Error>> {
        let index = self.next;
        self.next += 1;
        match self.constants.iter().find(|(at, _)| *at == index) {
            Some(&(_, constant)) => {
                let mut f = Function::new([]);
                f.instruction(&Instruction::I32Const(constant));
                f.instruction(&Instruction::End);
                code.function(&f);
                Ok(())
            }
            None => wasm_encoder::reencode::utils::parse_function_body(self, code, func),
        }
    }
}

/// A `wasm-smith` module with duet's imports and the ABI's exports, `duet_abi_version` and
/// `duet_buffer` made constant, and the map manifest appended. `None` when the input runs out or
/// the module cannot be re-encoded.
fn smith(u: &mut Unstructured<'_>, v2: bool, n_programs: usize) -> Option<Vec<u8>> {
    let config = wasm_smith::Config {
        available_imports: Some(smith_imports(v2)),
        exports: Some(smith_exports(n_programs)),
        max_memories: 0, // the exported memory is generated anyway
        max_memory32_bytes: 2 * PAGE as u64,
        max_tables: 1,
        max_funcs: 16,
        max_instructions: 200,
        gc_enabled: false,
        reference_types_enabled: false,
        exceptions_enabled: false,
        threads_enabled: false,
        memory64_enabled: false,
        custom_page_sizes_enabled: false,
        wide_arithmetic_enabled: false,
        shared_everything_threads_enabled: false,
        ..wasm_smith::Config::default()
    };
    let bytes = wasm_smith::Module::new(config, u).ok()?.to_bytes();

    // Function indices of the two ABI functions: imported functions come first.
    let (mut n_imported, mut abi, mut buffer) = (0u32, None, None);
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        match payload.ok()? {
            wasmparser::Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    if matches!(import.ok()?.ty, wasmparser::TypeRef::Func(_) | wasmparser::TypeRef::FuncExact(_)) {
                        n_imported += 1;
                    }
                }
            }
            wasmparser::Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.ok()?;
                    match export.name {
                        "duet_abi_version" => abi = Some(export.index),
                        "duet_buffer" => buffer = Some(export.index),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let mut patch =
        Patch { next: n_imported, constants: [(abi?, if v2 { 2 } else { 1 }), (buffer?, VALID_BUFFER as i32)] };
    let mut module = Module::new();
    patch.parse_core_module(&mut module, wasmparser::Parser::new(0), &bytes).ok()?;
    module.section(&CustomSection { name: Cow::Borrowed("duet.maps"), data: Cow::Borrowed(MANIFEST.as_bytes()) });
    Some(module.finish())
}

fn debug() -> bool {
    std::env::var_os("WASM_HOST_DEBUG").is_some()
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(smith_mode) = u.arbitrary::<bool>() else { return };
    let (wasm, n_programs, packet) = if smith_mode {
        let (Ok(v2), Ok(n), Ok(packet)) = (u.arbitrary::<bool>(), u.int_in_range(1..=3usize), u.arbitrary::<Vec<u8>>())
        else {
            return;
        };
        let Some(wasm) = smith(&mut u, v2, n) else { return };
        (wasm, n, packet)
    } else {
        let Ok(input) = Input::arbitrary_take_rest(u) else { return };
        let (wasm, n) = build(&input);
        (wasm, n, input.packet)
    };
    if packet.len() > 4096 {
        return;
    }
    let options = WasmOptions {
        n_cpus: 2,
        env: Env::deterministic(),
        memory_limit: 128 << 10,
        deadline: Duration::from_millis(50),
        cache_dir: None,
        max_map_memory: 1 << 20,
    };
    let module = match WasmModule::load(&wasm, &options) {
        Ok(module) => module,
        Err(err) => {
            if debug() {
                let mut chain = format!("{err}");
                let mut source = std::error::Error::source(&err);
                while let Some(cause) = source {
                    chain.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                eprintln!("load ({}): {chain}", if smith_mode { "smith" } else { "encoded" });
            }
            return;
        }
    };
    let module = Arc::new(module);
    for i in 0..n_programs {
        let Ok(mut exec) = module.executor(&format!("p{i}")) else {
            if debug() {
                eprintln!("no executor p{i}: {:?}", module.programs());
            }
            continue;
        };
        for _ in 0..2 {
            let mut packet = packet.clone();
            let r = exec.run_xdp(&mut packet);
            if debug() {
                eprintln!("p{i} ({}): {r:?}", if smith_mode { "smith" } else { "encoded" });
            }
        }
    }
    let _ = module.take_log();
    let _ = module.take_trace();
});
