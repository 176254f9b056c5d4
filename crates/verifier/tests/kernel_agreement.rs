//! duet's verdict next to the kernel's, for a privileged loader (root: CAP_BPF + CAP_PERFMON,
//! duet's default) and an unprivileged one (CAP_BPF without CAP_PERFMON,
//! `Config::unprivileged`).
//!
//! Each file in `tests/verifier/agree/` is a program in the test-file format
//! (`duet_verifier::testfile`) with two more headers, the verdict in each mode:
//!
//! ```text
//! # privileged: accept
//! # unprivileged: reject <a substring of duet's rejection>
//! ```
//!
//! `skip` (with a reason) instead of a verdict leaves a mode out (no file needs it now: the
//! tracing program types, which the kernel loads only with CAP_PERFMON, are refused in both).
//! duet must give exactly these verdicts. When this process may load BPF programs (root), the
//! kernel loads every file both ways (`duet_kernel::load_raw` with `Privileges::Inherit` and
//! `Privileges::BpfOnly`) and must agree; elsewhere the kernel half says loudly that it skipped,
//! and under `CI=true` it fails instead. `DUET_SHOW_KERNEL_LOG=1` prints the kernel's reason for
//! every rejection.
//!
//! Programs the kernel loads only with BTF (callbacks need BTF func_info: loaded as raw
//! bytecode the kernel refuses them with "missing btf func_info") carry
//! `# kernel-raw: <text of the kernel's refusal>`: the raw load must fail for that reason, and
//! duet's verdicts stand on their own. Their kernel comparison is made by C files in
//! `tests/verifier/agree/c/`, with the same headers in their first comment, compiled with clang
//! as the BPF corpus is and loaded by the kernel as objects (`duet_kernel::load_check`): with
//! root's privileges for the privileged verdict, and for the unprivileged one by this test
//! binary run again under `setpriv` without CAP_PERFMON and CAP_SYS_ADMIN (as
//! `Privileges::BpfOnly` loads raw bytecode).
//!
//! A C file with a map of maps states its inner map template in a header, as its `struct`
//! declares it for the kernel (`inner-map: outer array key=4 value=8 entries=4`, the `# map:`
//! syntax), and the test checks that duet-object read exactly that template from the object's
//! BTF (`MapDef::inner`, which the verifier takes as `MapInfo::inner`).
//!
//! The negative corpus (`tests/verifier/*.s`) is checked against the kernel by
//! `crates/cli/tests/verifier.rs`; its duet half is repeated here so that a change to the
//! verifier's rules shows up in this crate's own tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use duet_isa::Program;
use duet_kernel::{Privileges, RawMap, RawProgram};
use duet_verifier::testfile::TestFile;

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    files_with(dir, "s")
}

fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// An expected verdict: accept, or reject with a message containing the text.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    Accept,
    Reject(String),
    /// Not checked in this mode.
    Skip,
}

impl Expect {
    fn parse(value: &str) -> Result<Expect, String> {
        match value.split_once(' ').map_or((value, ""), |(a, b)| (a, b.trim())) {
            ("accept", "") => Ok(Expect::Accept),
            ("skip", _) => Ok(Expect::Skip),
            ("reject", why) if !why.is_empty() => Ok(Expect::Reject(why.to_owned())),
            _ => Err(format!("`{value}` is neither `accept`, `skip` nor `reject <text of duet's message>`")),
        }
    }

    fn accepts(&self) -> bool {
        *self == Expect::Accept
    }
}

struct AgreeFile {
    name: String,
    file: TestFile,
    privileged: Expect,
    unprivileged: Expect,
    /// Why the kernel refuses the raw bytecode whatever its verdict on the program would be.
    kernel_raw: Option<String>,
}

fn header<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let l = l.trim();
        let l = l.strip_prefix('#').or_else(|| l.strip_prefix('*')).or_else(|| l.strip_prefix("/*"))?;
        l.trim().strip_prefix(key)?.strip_prefix(':').map(str::trim)
    })
}

fn agree_files() -> Vec<AgreeFile> {
    let mut out = Vec::new();
    for path in files_in(&root().join("tests/verifier/agree")) {
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).expect("read test file");
        let file = TestFile::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mode = |key: &str| {
            let value = header(&text, key).unwrap_or_else(|| panic!("{name}: no `# {key}:` header"));
            Expect::parse(value).unwrap_or_else(|e| panic!("{name}: {key}: {e}"))
        };
        let (privileged, unprivileged) = (mode("privileged"), mode("unprivileged"));
        let kernel_raw = header(&text, "kernel-raw").map(str::to_owned);
        out.push(AgreeFile { name, file, privileged, unprivileged, kernel_raw });
    }
    out
}

/// duet's verdict: `Ok` if the program verifies, else the rendered rejection.
fn duet_verdict(file: &TestFile, unprivileged: bool) -> Result<(), String> {
    let mut ctx = file.context();
    ctx.config.unprivileged = unprivileged;
    let program = Program::from_insns(&file.insns).map_err(|e| e.to_string())?;
    duet_verifier::verify(&program, &ctx).map(drop).map_err(|r| r.to_string())
}

/// The kernel's verdict: `Ok` if it loads, else the verifier log.
fn kernel_verdict(file: &TestFile, privileges: Privileges) -> Result<(), String> {
    let insns = file.raw_insns();
    let maps: Vec<RawMap> = file
        .maps
        .iter()
        .map(|m| RawMap {
            name: m.name.clone(),
            map_type: m.map_type,
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            flags: m.flags,
        })
        .collect();
    let prog_type = file.program_type.kernel_prog_type().expect("agreement files are kernel program types");
    let program = RawProgram { prog_type, insns: &insns, maps: &maps, privileges, log: true };
    duet_kernel::load_raw(&program).map_err(|e| e.to_string())
}

/// The kernel's reason in one line: the last log line before its statistics.
fn kernel_reason(log: &str) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    let summary = |l: &&str| l.starts_with("verification time") || (l.contains("processed ") && l.contains(" insns"));
    let end = lines.iter().position(summary).unwrap_or(lines.len());
    lines[..end].last().copied().unwrap_or("").to_owned()
}

fn check_duet(name: &str, mode: &str, verdict: &Result<(), String>, want: &Expect, failures: &mut Vec<String>) {
    match (verdict, want) {
        (_, Expect::Skip) | (Ok(()), Expect::Accept) => {}
        (Err(msg), Expect::Reject(text)) if msg.contains(text.as_str()) => {}
        (Err(msg), Expect::Reject(text)) => {
            failures.push(format!("{name} ({mode}): duet's rejection does not mention `{text}`:\n{msg}"))
        }
        (Ok(()), Expect::Reject(_)) => failures.push(format!("{name} ({mode}): duet ACCEPTS it")),
        (Err(msg), Expect::Accept) => failures.push(format!("{name} ({mode}): duet REJECTS it:\n{msg}")),
    }
}

#[test]
fn duet_and_the_kernel_agree_for_privileged_and_unprivileged_loaders() {
    let files = agree_files();
    assert!(files.len() >= 10, "tests/verifier/agree has only {} files", files.len());
    let kernel = match duet_kernel::check_access() {
        Ok(()) => true,
        Err(err) => {
            assert!(!ci(), "the kernel comparison cannot run: {err} (CI=true makes this a failure)");
            eprintln!("\n!!! SKIPPED the kernel half of the agreement test: {err} !!!\n");
            false
        }
    };
    let show = std::env::var_os("DUET_SHOW_KERNEL_LOG").is_some();
    let mut failures = Vec::new();
    for f in &files {
        for (mode, unprivileged, want, privileges) in [
            ("privileged", false, &f.privileged, Privileges::Inherit),
            ("unprivileged", true, &f.unprivileged, Privileges::BpfOnly),
        ] {
            if *want == Expect::Skip {
                continue;
            }
            let ours = duet_verdict(&f.file, unprivileged);
            check_duet(&f.name, mode, &ours, want, &mut failures);
            if !kernel {
                continue;
            }
            let theirs = kernel_verdict(&f.file, privileges);
            let said = theirs
                .as_ref()
                .err()
                .map_or_else(|| "accepts".to_owned(), |log| format!("rejects: {}", kernel_reason(log)));
            if show {
                eprintln!("{:<44} {mode:<12} kernel {said}", f.name);
            }
            if let Some(why) = &f.kernel_raw {
                if !theirs.as_ref().is_err_and(|log| log.contains(why.as_str())) {
                    failures
                        .push(format!("{} ({mode}): the kernel's raw load did not fail with `{why}`: {said}", f.name));
                }
                continue;
            }
            if theirs.is_ok() != want.accepts() {
                failures.push(format!(
                    "{} ({mode}): the kernel {} it, the file expects {want:?}{}",
                    f.name,
                    if theirs.is_ok() { "ACCEPTS" } else { "REJECTS" },
                    theirs.err().map(|log| format!(":\n{log}")).unwrap_or_default()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} problem(s):\n\n{}", failures.len(), failures.join("\n\n"));
}

/// The duet half of the negative corpus (the kernel half is in crates/cli/tests/verifier.rs):
/// every program is rejected naming its cause, with the rules its headers ask for.
#[test]
fn negative_corpus_is_rejected_by_duet() {
    let mut failures = Vec::new();
    let files = files_in(&root().join("tests/verifier"));
    assert!(files.len() >= 50, "the negative corpus has {} files", files.len());
    for path in files {
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).expect("read test file");
        let file = TestFile::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ctx = file.context();
        let verdict = match Program::from_insns(&file.insns) {
            Err(err) => Err(duet_verifier::decode_diagnostic(&err).to_string()),
            Ok(program) => duet_verifier::verify(&program, &ctx).map(drop).map_err(|r| r.to_string()),
        };
        match verdict {
            Ok(()) => failures.push(format!("{name}: duet ACCEPTS it ({})", file.title)),
            Err(msg) => {
                for want in &file.expect {
                    if !msg.contains(want.as_str()) {
                        failures.push(format!("{name}: duet's rejection does not mention `{want}`:\n{msg}"));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The C half: programs with callbacks (bpf_loop), which the kernel loads only with BTF, and
/// programs modelled on real ones; both verdicts compared with the kernel's.
#[test]
fn duet_and_the_kernel_agree_on_c_programs_with_btf() {
    let dir = root().join("tests/verifier/agree/c");
    let sources = files_with(&dir, "c");
    assert!(!sources.is_empty(), "{} has no C programs", dir.display());
    let clang = Command::new("clang").arg("--version").output().is_ok_and(|o| o.status.success());
    if !clang {
        let why = "clang is not installed (`cargo xtask build-bpf` installs it)";
        assert!(!ci(), "{why} (CI=true makes this a failure)");
        eprintln!("\n!!! SKIPPED the C agreement programs: {why} !!!\n");
        return;
    }
    let kernel = match duet_kernel::check_access() {
        Ok(()) => true,
        Err(err) => {
            assert!(!ci(), "the kernel comparison cannot run: {err} (CI=true makes this a failure)");
            eprintln!("\n!!! SKIPPED the kernel half of the C agreement programs: {err} !!!\n");
            false
        }
    };
    let out_dir = std::env::temp_dir().join(format!("duet-verifier-agree-c-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).expect("temp dir");
    let include = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let show = std::env::var_os("DUET_SHOW_KERNEL_LOG").is_some();
    let mut failures = Vec::new();
    for src in &sources {
        let name = src.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(src).expect("read source");
        let mode = |key: &str| {
            let value = header(&text, key).unwrap_or_else(|| panic!("{name}: no `{key}:` line"));
            Expect::parse(value).unwrap_or_else(|e| panic!("{name}: {key}: {e}"))
        };
        let (privileged, unprivileged) = (mode("privileged"), mode("unprivileged"));
        let obj = out_dir.join(name.replace(".c", ".o"));
        let status = Command::new("clang")
            .args(["-O2", "-g", "-Wall", "-target", "bpf", &include, "-c"])
            .arg(src)
            .arg("-o")
            .arg(&obj)
            .status()
            .expect("run clang");
        assert!(status.success(), "clang failed on {name}");
        let bytes = std::fs::read(&obj).expect("read object");
        let object = duet_object::Object::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let program = object.program(None).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ctx = duet_verifier::VerifyContext::for_object_program(&object, program)
            .unwrap_or_else(|| panic!("{name}: duet does not verify {:?} programs", program.kind));
        for line in text.lines() {
            let Some(value) = line.trim_start_matches([' ', '*']).strip_prefix("inner-map:") else { continue };
            let (outer, def) = value.trim().split_once(' ').unwrap_or_else(|| panic!("{name}: `inner-map: outer def`"));
            let inner = duet_verifier::testfile::parse_map(def, format!("{outer}.inner"))
                .unwrap_or_else(|e| panic!("{name}: inner-map: {e}"));
            // duet-object reads the template from the object itself; the header states what it must be.
            let map = ctx.maps.iter().find(|m| m.name == outer).unwrap_or_else(|| panic!("{name}: no map `{outer}`"));
            assert_eq!(map.inner.as_deref(), Some(&inner), "{name}: the inner map template duet-object read");
        }
        for (mode, unprivileged, want) in [("privileged", false, &privileged), ("unprivileged", true, &unprivileged)] {
            if *want == Expect::Skip {
                continue;
            }
            let mut ctx = ctx.clone();
            ctx.config = duet_verifier::Config { unprivileged, ..duet_verifier::Config::default() };
            let ours = duet_verifier::verify(&program.program, &ctx).map(drop).map_err(|e| e.to_string());
            check_duet(&name, mode, &ours, want, &mut failures);
        }
        for (mode, want) in [("privileged", &privileged), ("unprivileged", &unprivileged)] {
            if !kernel || *want == Expect::Skip {
                continue;
            }
            let theirs = if mode == "privileged" {
                duet_kernel::load_check(&bytes).map(drop).map_err(|e| e.to_string())
            } else {
                match load_without_perfmon(&obj) {
                    Ok(verdict) => verdict,
                    Err(why) => {
                        assert!(!ci(), "{name}: {why} (CI=true makes this a failure)");
                        eprintln!("\n!!! {name}: SKIPPED the unprivileged kernel load: {why} !!!\n");
                        continue;
                    }
                }
            };
            if show {
                let said = theirs
                    .as_ref()
                    .err()
                    .map_or_else(|| "accepts".to_owned(), |log| format!("rejects: {}", kernel_reason(log)));
                eprintln!("{name:<44} {mode:<12} kernel {said}");
            }
            if theirs.is_ok() != want.accepts() {
                failures.push(format!(
                    "{name} ({mode}): the kernel {} it, the file expects {want:?}{}",
                    if theirs.is_ok() { "ACCEPTS" } else { "REJECTS" },
                    theirs.err().map(|log| format!(":\n{log}")).unwrap_or_default()
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&out_dir);
    assert!(failures.is_empty(), "{} problem(s):\n\n{}", failures.len(), failures.join("\n\n"));
}

/// The environment variable naming the object [`load_in_child_without_perfmon`] loads.
const CHILD_OBJECT: &str = "DUET_AGREEMENT_CHILD_OBJECT";
/// How the child reports the kernel's verdict on its stdout.
const CHILD_VERDICT: &str = "duet-agreement-verdict: ";

/// The kernel's verdict on an object loaded as a CAP_BPF-only loader would: this test binary
/// runs again under `setpriv` with CAP_PERFMON and CAP_SYS_ADMIN dropped from its bounding set
/// (so root's exec does not get them back), and the child loads the object with
/// `duet_kernel::load_check`. `Err` when the child could not run.
fn load_without_perfmon(obj: &Path) -> Result<Result<(), String>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the test binary: {e}"))?;
    let out = Command::new("setpriv")
        .args(["--bounding-set=-perfmon,-sys_admin", "--inh-caps=-perfmon,-sys_admin"])
        .arg(exe)
        .args(["--exact", "load_in_child_without_perfmon", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_OBJECT, obj)
        .output()
        .map_err(|e| format!("cannot run setpriv (util-linux) to drop CAP_PERFMON: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find_map(|l| l.split_once(CHILD_VERDICT).map(|(_, v)| v)).ok_or_else(|| {
        format!("the child load reported no verdict:\n{stdout}{}", String::from_utf8_lossy(&out.stderr))
    })?;
    match line.split_once(' ').unwrap_or((line, "")) {
        ("accept", _) => Ok(Ok(())),
        ("reject", why) => Ok(Err(why.replace("\\n", "\n"))),
        (_, why) => Err(format!("the child load failed: {why}")),
    }
}

/// The child half of [`load_without_perfmon`]: not a test on its own (it does nothing unless
/// the parent names an object), run with the capabilities the parent left it.
#[test]
#[ignore = "run by duet_and_the_kernel_agree_on_c_programs_with_btf, without CAP_PERFMON"]
fn load_in_child_without_perfmon() {
    let Some(path) = std::env::var_os(CHILD_OBJECT) else { return };
    // CAP_PERFMON is bit 38, CAP_SYS_ADMIN bit 21: the parent's setpriv must have removed both.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eff = status.lines().find_map(|l| l.strip_prefix("CapEff:")).map(str::trim).unwrap_or("");
    let caps = u64::from_str_radix(eff, 16).unwrap_or(u64::MAX);
    if caps & (1 << 38 | 1 << 21) != 0 {
        println!("{CHILD_VERDICT}error the child still has CAP_PERFMON or CAP_SYS_ADMIN (CapEff {eff})");
        return;
    }
    let bytes = std::fs::read(&path).expect("read object");
    match duet_kernel::load_check(&bytes) {
        Ok(_) => println!("{CHILD_VERDICT}accept"),
        Err(e) => println!("{CHILD_VERDICT}reject {}", e.to_string().replace('\n', "\\n")),
    }
}
