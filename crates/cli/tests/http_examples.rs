//! The HTTP examples (`examples/apikey`, `examples/canary`), end to end with the real `duet`
//! binary: `duet build` produces both artifacts; the `.bpf.o` holds the program in its
//! userspace-only section with no calls the verifier cannot resolve, and `duet verify` proves it
//! safe; the `.wasm` has the exports and only the imports of docs/ABI.md (version 2) and the same
//! maps as the object. Then both artifacts run the same exchanges in every userspace executor (the
//! interpreter, the JIT, the Wasm host), each with its own maps and deterministic clock: the
//! outcomes, the exchanges' changes and the maps must be what the examples' documentation says,
//! and identical everywhere.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use duet_maps::Map;
use duet_object::{Object, ProgramKind};
use duet_vm::http::{HttpField, HttpMd, HttpOutcome, MemoryExchange};
use duet_vm::{Engine, Env, HttpRunner, LoadOptions, Module};
use duet_wasm::{WasmModule, WasmOptions};
use serde_json::{Value as Json, json};
use wasmparser::{CompositeInnerType, ExternalKind, Payload, TypeRef, ValType};

const DUET: &str = env!("CARGO_BIN_EXE_duet");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Runs `duet` with `args`; panics with its output when it fails; returns stdout.
fn duet(args: &[&str]) -> String {
    let out = Command::new(DUET).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "`duet {}` failed:\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Builds an example with `duet build` (once per test process: two tests building the same
/// example at once would overwrite the artifacts the other reads); returns the paths of its
/// `.bpf.o` and `.wasm`.
fn build(example: &str) -> (PathBuf, PathBuf) {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = root().join("examples").join(example);
    let bpf = dir.join(format!("target/duet/{example}.bpf.o"));
    let wasm = dir.join(format!("target/duet/{example}.wasm"));
    if !built.iter().any(|b| b == example) {
        let stdout = duet(&["build", "--quiet", dir.to_str().unwrap()]);
        assert_eq!(stdout.lines().collect::<Vec<_>>(), [bpf.to_str().unwrap(), wasm.to_str().unwrap()]);
        built.push(example.to_owned());
    }
    (bpf, wasm)
}

/// Checks the object's programs (name, kind, section) and that every call is a helper call: a
/// `call -1` is an unresolved function (`memset`, `memcpy` beyond LLVM's inline limit), which
/// the SDK must never produce.
fn check_object(path: &Path, programs: &[(&str, ProgramKind, &str)]) -> Vec<String> {
    let object = Object::parse(&std::fs::read(path).unwrap()).unwrap();
    let got: Vec<(&str, &ProgramKind, &str)> =
        object.programs.iter().map(|p| (p.name.as_str(), &p.kind, p.section.as_str())).collect();
    let want: Vec<(&str, &ProgramKind, &str)> = programs.iter().map(|(n, k, s)| (*n, k, *s)).collect();
    assert_eq!(got, want, "{}", path.display());
    let disasm = duet(&["inspect", path.to_str().unwrap()]);
    assert!(!disasm.contains("call -1"), "{}: a call of an unresolved function:\n{disasm}", path.display());
    let verified = duet(&["verify", path.to_str().unwrap()]);
    for (name, _, _) in programs {
        assert!(verified.contains(&format!("{name}: verified")), "{verified}");
    }
    let mut maps: Vec<String> =
        object.maps.iter().filter(|m| !m.name.starts_with('.')).map(|m| m.name.clone()).collect();
    maps.sort();
    maps
}

/// The imports docs/ABI.md allows, with their signatures.
fn abi_imports() -> Vec<(&'static str, Vec<ValType>, Vec<ValType>)> {
    use ValType::{I32, I64};
    vec![
        ("map_lookup", vec![I32, I32, I32], vec![I32]),
        ("map_update", vec![I32, I32, I32, I64], vec![I64]),
        ("map_delete", vec![I32, I32], vec![I64]),
        ("map_add_u64", vec![I32, I32, I32, I64], vec![I64]),
        ("ktime_get_ns", vec![], vec![I64]),
        ("get_prandom_u32", vec![], vec![I32]),
        ("get_smp_processor_id", vec![], vec![I32]),
        ("trace", vec![I32, I32], vec![]),
        ("ringbuf_output", vec![I32, I32, I32, I64], vec![I64]),
        ("http_field", vec![I32, I32, I32], vec![I64]),
        ("http_header_get", vec![I32, I32, I32, I32], vec![I64]),
        ("http_header_set", vec![I32, I32, I32, I32], vec![I64]),
        ("http_header_add", vec![I32, I32, I32, I32], vec![I64]),
        ("http_header_remove", vec![I32, I32], vec![I64]),
        ("http_respond", vec![I32, I32, I32], vec![I64]),
    ]
}

/// Validates the module and checks its ABI surface: exactly `programs` exported, each with
/// `(i32, i32) -> result`, every import from `duet` with its ABI signature. Returns the import
/// names and the manifest.
fn check_wasm(path: &Path, programs: &[(&str, ValType)]) -> (Vec<String>, Json) {
    let bytes = std::fs::read(path).unwrap();
    wasmparser::Validator::new().validate_all(&bytes).unwrap_or_else(|e| panic!("{}: invalid: {e}", path.display()));
    let mut types = Vec::new();
    let mut func_types = Vec::new(); // the type index of every function, imports first
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut manifest = None;
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        match payload.unwrap() {
            Payload::TypeSection(reader) => {
                for group in reader {
                    for ty in group.unwrap().into_types() {
                        let CompositeInnerType::Func(f) = &ty.composite_type.inner else { panic!("not a func type") };
                        types.push((f.params().to_vec(), f.results().to_vec()));
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.unwrap();
                    assert_eq!(import.module, "duet", "import {} from a module other than `duet`", import.name);
                    let TypeRef::Func(index) = import.ty else { panic!("import {} is not a function", import.name) };
                    let abi = abi_imports();
                    let (_, params, results) = abi
                        .iter()
                        .find(|(name, _, _)| *name == import.name)
                        .unwrap_or_else(|| panic!("import `{}` is not in docs/ABI.md", import.name));
                    assert_eq!(
                        types[index as usize],
                        (params.clone(), results.clone()),
                        "signature of {}",
                        import.name
                    );
                    func_types.push(index);
                    imports.push(import.name.to_owned());
                }
            }
            Payload::FunctionSection(reader) => func_types.extend(reader.into_iter().map(Result::unwrap)),
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.unwrap();
                    exports.push((export.name.to_owned(), export.kind, export.index));
                }
            }
            Payload::CustomSection(section) if section.name() == "duet.maps" => {
                manifest = Some(serde_json::from_slice::<Json>(section.data()).unwrap());
            }
            _ => {}
        }
    }
    let export_type = |name: &str| {
        let (_, kind, index) = exports.iter().find(|(n, _, _)| n == name).unwrap_or_else(|| panic!("no export {name}"));
        assert_eq!(*kind, ExternalKind::Func, "{name} is not a function");
        types[func_types[*index as usize] as usize].clone()
    };
    use ValType::I32;
    assert_eq!(export_type("duet_abi_version"), (vec![], vec![I32]));
    assert_eq!(export_type("duet_buffer"), (vec![I32], vec![I32]));
    for (program, result) in programs {
        assert_eq!(export_type(program), (vec![I32, I32], vec![*result]), "signature of {program}");
    }
    let exported: Vec<&str> =
        exports.iter().map(|(n, _, _)| n.as_str()).filter(|n| n.starts_with("duet_prog_")).collect();
    assert_eq!(exported, programs.iter().map(|(p, _)| *p).collect::<Vec<_>>());
    (imports, manifest.unwrap_or_else(|| panic!("{}: no duet.maps section", path.display())))
}

fn map_entry(name: &str, map_type: u32, key_size: u32, value_size: u32, max_entries: u32) -> Json {
    json!({"name": name, "type": map_type, "key_size": key_size, "value_size": value_size,
           "max_entries": max_entries, "flags": 0})
}

#[test]
fn apikey_builds_verifies_and_speaks_the_abi() {
    let (bpf, wasm) = build("apikey");
    let maps = check_object(
        &bpf,
        &[
            ("apikey", ProgramKind::HttpRequest, "duet/http_request"),
            ("apikey_errors", ProgramKind::HttpResponse, "duet/http_response"),
        ],
    );
    assert_eq!(maps, ["BUCKETS", "DECISIONS", "KEYS", "STATS"]);
    let (imports, manifest) = check_wasm(
        &wasm,
        &[("duet_prog_http_request_apikey", ValType::I32), ("duet_prog_http_response_apikey_errors", ValType::I32)],
    );
    for import in ["http_header_get", "http_header_set", "http_header_remove", "http_respond", "ringbuf_output"] {
        assert!(imports.iter().any(|i| i == import), "apikey does not import {import}: {imports:?}");
    }
    assert_eq!(
        manifest,
        json!([
            map_entry("DECISIONS", 27, 0, 0, 65536),
            map_entry("KEYS", 1, 32, 64, 1024),
            map_entry("BUCKETS", 9, 32, 16, 1024),
            map_entry("STATS", 2, 4, 8, 3)
        ])
    );
}

#[test]
fn canary_builds_verifies_and_speaks_the_abi() {
    let (bpf, wasm) = build("canary");
    let maps = check_object(&bpf, &[("canary", ProgramKind::Route, "duet/route")]);
    assert_eq!(maps, ["CONFIG", "STATS"]);
    let (imports, manifest) = check_wasm(&wasm, &[("duet_prog_route_canary", ValType::I64)]);
    assert!(
        imports.iter().all(|i| !matches!(i.as_str(), "http_header_set" | "http_header_add" | "http_respond")),
        "a route program imports nothing that changes the exchange: {imports:?}"
    );
    assert_eq!(manifest, json!([map_entry("CONFIG", 2, 4, 4, 1), map_entry("STATS", 2, 4, 8, 2)]));
}

// === running the examples in every executor ===

/// One executor of an example, with its own maps and clock (`Env::deterministic()`).
enum Runner {
    Vm(HttpRunner, Module),
    Wasm(Box<duet_wasm::Executor>, WasmModule),
}

const EXECUTORS: [&str; 3] = ["interpreter", "jit", "wasm"];

impl Runner {
    fn new(which: &str, bpf: &Path, wasm: &Path, program: &str) -> Runner {
        match which {
            "wasm" => {
                let options = WasmOptions { env: Env::deterministic(), ..WasmOptions::default() };
                let module = WasmModule::load(&std::fs::read(wasm).unwrap(), &options).unwrap();
                Runner::Wasm(Box::new(module.executor(program).unwrap()), module)
            }
            engine => {
                let object = Object::parse(&std::fs::read(bpf).unwrap()).unwrap();
                let module =
                    Module::load(&object, LoadOptions { env: Env::deterministic(), ..LoadOptions::default() }).unwrap();
                let engine = if engine == "jit" { Engine::Jit } else { Engine::Interpreter };
                Runner::Vm(module.http_runner(program, engine).unwrap(), module)
            }
        }
    }

    fn map(&self, name: &str) -> Arc<Map> {
        match self {
            Runner::Vm(_, module) => Arc::clone(module.map(name).unwrap()),
            Runner::Wasm(_, module) => Arc::clone(module.map(name).unwrap()),
        }
    }

    fn run(&mut self, md: &HttpMd, ex: &mut MemoryExchange) -> HttpOutcome {
        match self {
            Runner::Vm(runner, _) => runner.run(md, ex).unwrap(),
            Runner::Wasm(executor, _) => executor.run_http(md, ex).unwrap(),
        }
    }

    /// Every entry of `name`, sorted, as hex.
    fn entries(&self, name: &str) -> Vec<(String, String)> {
        let mut entries: Vec<(String, String)> =
            self.map(name).entries().into_iter().map(|(k, v)| (hex(&k), hex(v.as_single().unwrap()))).collect();
        entries.sort();
        entries
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A request from `client` with `headers` (names lower-case, as the sidecar passes them).
fn request(client: [u8; 4], headers: &[(&str, &str)]) -> (HttpMd, MemoryExchange) {
    let md = HttpMd {
        remote_ip4: HttpMd::ip4(client),
        remote_port: 40000,
        local_port: 8080,
        http_version: 11,
        ..HttpMd::default()
    };
    let fields: [(HttpField, &[u8]); 5] = [
        (HttpField::Method, b"GET"),
        (HttpField::Path, b"/orders"),
        (HttpField::Authority, b"svc.local"),
        (HttpField::Scheme, b"http"),
        (HttpField::ClientIp, &client),
    ];
    let headers = headers.iter().map(|(n, v)| (*n, v.as_bytes()));
    (md, MemoryExchange::new(fields, headers))
}

/// What one run came to: the return value, whether `http_respond` succeeded, the local response
/// and the exchange's headers afterwards.
type Seen = (i64, bool, Option<(u16, String)>, Vec<(String, String)>);

fn seen(outcome: HttpOutcome, ex: &MemoryExchange) -> Seen {
    let response = ex.response.as_ref().map(|(status, body)| (*status, String::from_utf8_lossy(body).into_owned()));
    let headers = ex.headers.iter().map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned())).collect();
    (outcome.ret, outcome.responded, response, headers)
}

/// A `KEYS` value of the apikey example: requests, limited, rate, burst, id_len, 0, id[32].
fn client(id: &str, rate: u32, burst: u32) -> Vec<u8> {
    let mut value = vec![0u8; 16];
    for word in [rate, burst, id.len() as u32, 0] {
        value.extend(word.to_le_bytes());
    }
    let mut name = id.as_bytes().to_vec();
    name.resize(32, 0);
    value.extend(name);
    value
}

fn api_key(key: &str) -> Vec<u8> {
    let mut bytes = key.as_bytes().to_vec();
    bytes.resize(32, 0);
    bytes
}

#[test]
fn apikey_runs_alike_in_every_executor() {
    let (bpf, wasm) = build("apikey");
    let too_long = "k".repeat(40);
    let requests: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("x-api-key", "nobody")],
        vec![("x-api-key", &too_long)],
        vec![("x-api-key", "alice-key"), ("accept", "*/*")],
        vec![("x-api-key", "alice-key"), ("x-duet-client", "mallory")],
        vec![("x-api-key", "alice-key")],
        vec![("x-api-key", "bob-key")],
        vec![("x-api-key", "bob-key")],
        vec![("x-api-key", "bad-key")],
    ];
    let mut all = Vec::new();
    for which in EXECUTORS {
        let mut runner = Runner::new(which, &bpf, &wasm, "apikey");
        let keys = runner.map("KEYS");
        keys.update(&api_key("alice-key"), &client("alice", 1, 2), 0, None).unwrap();
        keys.update(&api_key("bob-key"), &client("bob", 0, 0), 0, None).unwrap();
        keys.update(&api_key("bad-key"), &client("bad\nid", 0, 0), 0, None).unwrap();
        let outcomes: Vec<Seen> = requests
            .iter()
            .map(|headers| {
                let (md, mut ex) = request([10, 0, 0, 1], headers);
                let outcome = runner.run(&md, &mut ex);
                seen(outcome, &ex)
            })
            .collect();
        let maps = (runner.entries("KEYS"), runner.entries("STATS"), runner.entries("BUCKETS"));
        all.push((which, outcomes, maps));
    }

    let (_, seen, (keys, stats, _)) = &all[0];
    let unauthorized = Some((401, "missing or unknown api key".to_owned()));
    for (i, s) in seen[..3].iter().enumerate() {
        assert_eq!((s.0, s.1, &s.2), (1, true, &unauthorized), "request {i}");
    }
    let forwarded = |extra: &[(&str, &str)]| {
        let mut headers: Vec<(String, String)> = extra.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        headers.push(("x-duet-client".into(), "alice".into()));
        (0, false, None, headers)
    };
    assert_eq!(seen[3], forwarded(&[("accept", "*/*")]), "the key stays at the edge");
    assert_eq!(seen[4], forwarded(&[]), "a client cannot pose as another");
    assert_eq!((seen[5].0, &seen[5].2), (1, &Some((429, "rate limit exceeded".to_owned()))));
    assert_eq!((seen[6].0, seen[7].0), (0, 0), "rate 0 is unlimited");
    assert_eq!((seen[8].0, &seen[8].2), (1, &Some((500, String::new()))), "an id that is no header value");
    // Counters: alice forwarded 2 and limited 1, bob forwarded 2; STATS forwarded, 401, 429.
    let counters = |key: &str| {
        let value = &keys.iter().find(|(k, _)| *k == hex(&api_key(key))).unwrap().1;
        (value[..16].to_owned(), value[16..32].to_owned())
    };
    assert_eq!(counters("alice-key"), (hex(&2u64.to_le_bytes()), hex(&1u64.to_le_bytes())));
    assert_eq!(counters("bob-key"), (hex(&2u64.to_le_bytes()), hex(&0u64.to_le_bytes())));
    let stat = |i: u32, n: u64| (hex(&i.to_le_bytes()), hex(&n.to_le_bytes()));
    assert_eq!(*stats, [stat(0, 4), stat(1, 3), stat(2, 1)]);

    for (which, seen, maps) in &all[1..] {
        assert_eq!((seen, maps), (&all[0].1, &all[0].2), "{which} differs from {}", all[0].0);
    }
}

#[test]
fn apikey_errors_runs_alike_in_every_executor() {
    let (bpf, wasm) = build("apikey");
    let responses: [(u32, &[(&str, &str)]); 4] = [
        (503, &[("server", "backend/1.2"), ("content-type", "text/html")]),
        (500, &[]),
        (200, &[("server", "backend/1.2"), ("content-type", "application/json")]),
        (404, &[("content-type", "text/plain")]),
    ];
    let mut all = Vec::new();
    for which in EXECUTORS {
        let mut runner = Runner::new(which, &bpf, &wasm, "apikey_errors");
        let outcomes: Vec<Seen> = responses
            .iter()
            .map(|(status, headers)| {
                let (mut md, mut ex) = request([10, 0, 0, 1], headers);
                (md.phase, md.status) = (1, *status);
                let outcome = runner.run(&md, &mut ex);
                seen(outcome, &ex)
            })
            .collect();
        all.push((which, outcomes));
    }
    let (_, seen) = &all[0];
    let masked = Some((502, "upstream error".to_owned()));
    assert_eq!((seen[0].0, seen[0].1, &seen[0].2), (1, true, &masked));
    assert_eq!((seen[1].0, seen[1].1, &seen[1].2), (1, true, &masked));
    let passed = |headers: &[(&str, &str)]| {
        (0, false, None, headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect::<Vec<_>>())
    };
    assert_eq!(seen[2], passed(&[("content-type", "application/json")]), "`server` removed");
    assert_eq!(seen[3], passed(&[("content-type", "text/plain")]));
    for (which, seen) in &all[1..] {
        assert_eq!(seen, &all[0].1, "{which} differs from {}", all[0].0);
    }
}

/// The canary example's bucket of an IPv4 client: FNV-1a of the address, modulo 100.
fn bucket(ip: [u8; 4]) -> u32 {
    ip.iter().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)) % 100
}

#[test]
fn canary_runs_alike_in_every_executor() {
    let (bpf, wasm) = build("canary");
    let clients: Vec<[u8; 4]> = (0..200u32).map(|i| [10, 1, (i >> 8) as u8, i as u8]).collect();
    let mut all = Vec::new();
    for which in EXECUTORS {
        let mut runner = Runner::new(which, &bpf, &wasm, "canary");
        runner.map("CONFIG").update(&0u32.to_le_bytes(), &30u32.to_le_bytes(), 0, None).unwrap();
        let mut rets = Vec::new();
        for (i, ip) in clients.iter().enumerate() {
            let headers: &[(&str, &str)] = if i % 10 == 0 { &[("x-canary", "1")] } else { &[] };
            let (md, mut ex) = request(*ip, headers);
            let outcome = runner.run(&md, &mut ex);
            assert_eq!((outcome.responded, outcome.mutations), (false, 0));
            rets.push(outcome.ret);
        }
        all.push((which, rets, runner.entries("STATS")));
    }

    let stable = 0xffff_ffff_i64; // cluster 0, any endpoint
    let canary = 0x1_ffff_ffff_i64; // cluster 1, any endpoint
    let (_, rets, stats) = &all[0];
    for (i, (ip, ret)) in clients.iter().zip(rets).enumerate() {
        let want = if i % 10 == 0 || bucket(*ip) < 30 { canary } else { stable };
        assert_eq!(*ret, want, "client {ip:?}");
    }
    let to_canary = rets.iter().filter(|r| **r == canary).count() as u64;
    let count = |i: u32, n: u64| (hex(&i.to_le_bytes()), hex(&n.to_le_bytes()));
    assert_eq!(*stats, [count(0, 200 - to_canary), count(1, to_canary)]);
    for (which, rets, stats) in &all[1..] {
        assert_eq!((rets, stats), (&all[0].1, &all[0].2), "{which} differs from {}", all[0].0);
    }
}
