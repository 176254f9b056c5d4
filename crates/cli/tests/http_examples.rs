//! The HTTP examples (`examples/apikey`, `examples/canary`), end to end with the real `duet`
//! binary: `duet build` produces both artifacts; the `.bpf.o` holds the program in its
//! userspace-only section with no calls the verifier cannot resolve, and `duet verify` proves it
//! safe; the `.wasm` has the exports and only the imports of docs/ABI.md (version 2) and the same
//! maps as the object.

use std::path::{Path, PathBuf};
use std::process::Command;

use duet_object::{Object, ProgramKind};
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

/// Builds an example with `duet build`; returns the paths of its `.bpf.o` and `.wasm`.
fn build(example: &str) -> (PathBuf, PathBuf) {
    let dir = root().join("examples").join(example);
    let stdout = duet(&["build", "--quiet", dir.to_str().unwrap()]);
    let bpf = dir.join(format!("target/duet/{example}.bpf.o"));
    let wasm = dir.join(format!("target/duet/{example}.wasm"));
    assert_eq!(stdout.lines().collect::<Vec<_>>(), [bpf.to_str().unwrap(), wasm.to_str().unwrap()]);
    (bpf, wasm)
}

/// Checks the object's one program (kind, section) and that every call is a helper call: a
/// `call -1` is an unresolved function (`memset`, `memcpy` beyond LLVM's inline limit), which
/// the SDK must never produce.
fn check_object(path: &Path, name: &str, kind: ProgramKind, section: &str) -> Vec<String> {
    let object = Object::parse(&std::fs::read(path).unwrap()).unwrap();
    let [program] = &object.programs[..] else { panic!("{}: expected one program", path.display()) };
    assert_eq!((program.name.as_str(), &program.kind, program.section.as_str()), (name, &kind, section));
    let disasm = duet(&["inspect", path.to_str().unwrap()]);
    assert!(!disasm.contains("call -1"), "{}: a call of an unresolved function:\n{disasm}", path.display());
    let verified = duet(&["verify", path.to_str().unwrap()]);
    assert!(verified.contains(&format!("{name}: verified")), "{verified}");
    let mut maps: Vec<String> = object.maps.iter().filter(|m| !m.name.starts_with('.')).map(|m| m.name.clone()).collect();
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

/// Validates the module and checks its ABI surface: `program` exported with `(i32, i32) ->
/// result`, every import from `duet` with its ABI signature. Returns the import names and the
/// manifest.
fn check_wasm(path: &Path, program: &str, result: ValType) -> (Vec<String>, Json) {
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
                    assert_eq!(types[index as usize], (params.clone(), results.clone()), "signature of {}", import.name);
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
    assert_eq!(export_type(program), (vec![I32, I32], vec![result]), "signature of {program}");
    let programs: Vec<&str> =
        exports.iter().map(|(n, _, _)| n.as_str()).filter(|n| n.starts_with("duet_prog_")).collect();
    assert_eq!(programs, [program]);
    (imports, manifest.unwrap_or_else(|| panic!("{}: no duet.maps section", path.display())))
}

fn map_entry(name: &str, map_type: u32, key_size: u32, value_size: u32, max_entries: u32) -> Json {
    json!({"name": name, "type": map_type, "key_size": key_size, "value_size": value_size,
           "max_entries": max_entries, "flags": 0})
}

#[test]
fn apikey_builds_verifies_and_speaks_the_abi() {
    let (bpf, wasm) = build("apikey");
    let maps = check_object(&bpf, "apikey", ProgramKind::HttpRequest, "duet/http_request");
    assert_eq!(maps, ["BUCKETS", "KEYS", "STATS"]);
    let (imports, manifest) = check_wasm(&wasm, "duet_prog_http_request_apikey", ValType::I32);
    for import in ["http_header_get", "http_header_set", "http_header_remove", "http_respond"] {
        assert!(imports.iter().any(|i| i == import), "apikey does not import {import}: {imports:?}");
    }
    assert_eq!(
        manifest,
        json!([map_entry("KEYS", 1, 32, 64, 1024), map_entry("BUCKETS", 9, 32, 16, 1024), map_entry("STATS", 2, 4, 8, 3)])
    );
}

#[test]
fn canary_builds_verifies_and_speaks_the_abi() {
    let (bpf, wasm) = build("canary");
    let maps = check_object(&bpf, "canary", ProgramKind::Route, "duet/route");
    assert_eq!(maps, ["CONFIG", "STATS"]);
    let (imports, manifest) = check_wasm(&wasm, "duet_prog_route_canary", ValType::I64);
    assert!(
        imports.iter().all(|i| !matches!(i.as_str(), "http_header_set" | "http_header_add" | "http_respond")),
        "a route program imports nothing that changes the exchange: {imports:?}"
    );
    assert_eq!(manifest, json!([map_entry("CONFIG", 2, 4, 4, 1), map_entry("STATS", 2, 4, 8, 2)]));
}
