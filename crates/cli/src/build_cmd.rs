//! `duet build` and `duet new`: program crates to `.bpf.o` and `.wasm`, and new program crates.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use duet_build::{BuildConfig, MapEntry, Progress, Targets};
use duet_object::{MapOrigin, Object};

/// Options of `duet build`.
#[derive(Debug)]
pub struct BuildArgs {
    /// The program crate's directory.
    pub dir: PathBuf,
    /// Build only the `.bpf.o`.
    pub bpf_only: bool,
    /// Build only the `.wasm`.
    pub wasm_only: bool,
    /// Print only errors and the artifact paths.
    pub quiet: bool,
}

/// `duet build`: builds the crate, checks that both artifacts declare the same maps, prints a
/// summary to stderr and the artifact paths to stdout.
pub fn build(args: &BuildArgs) -> Result<()> {
    if args.bpf_only && args.wasm_only {
        bail!("--bpf-only and --wasm-only exclude each other; pass neither to build both");
    }
    let targets = Targets { bpf: !args.wasm_only, wasm: !args.bpf_only };
    let config =
        BuildConfig { crate_dir: args.dir.clone(), targets, tools_dir: None, progress: Progress { quiet: args.quiet } };
    let started = Instant::now();
    let out = duet_build::build(&config).with_context(|| format!("cannot build {}", args.dir.display()))?;
    let elapsed = started.elapsed();

    let checked = check_artifacts(&out, &args.dir);
    let bpf_maps = match checked {
        Ok(maps) => maps,
        Err(err) => {
            // A failed build leaves no artifact, not even a half-checked one to run by mistake.
            for path in out.bpf.iter().chain(&out.wasm) {
                let _ = std::fs::remove_file(path);
            }
            return Err(err);
        }
    };

    if !args.quiet {
        eprintln!("built {} in {:.1} s", out.name, elapsed.as_secs_f64());
        if let (Some(path), Some((programs, maps))) = (&out.bpf, &bpf_maps) {
            eprintln!("  {}  programs: {programs}; maps: {}", path.display(), names(maps));
        }
        if let Some(path) = &out.wasm {
            eprintln!(
                "  {}  exports: {}; manifest: {}",
                path.display(),
                out.wasm_programs.join(", "),
                names(&out.wasm_maps)
            );
        }
        if !out.kernel_only.is_empty() {
            eprintln!(
                "  no .wasm: {} exist only in the kernel (hooks or maps with no userspace meaning; `duet verify` \
                 checks tracepoints, the kernel verifies every program when it is attached)",
                out.kernel_only.join(", ")
            );
        }
    }
    for path in out.bpf.iter().chain(&out.wasm) {
        println!("{}", path.display());
    }
    Ok(())
}

/// The checks a build must pass after cargo: the `.bpf.o` loads, has no panic paths and valid
/// ring-buffer sizes, the `.wasm`'s manifest maps are valid, and both declare the same maps.
/// Returns the object's summary and maps.
fn check_artifacts(out: &duet_build::BuildOutput, dir: &Path) -> Result<Option<(String, Vec<MapEntry>)>> {
    for m in &out.wasm_maps {
        if let Some(map_type) = duet_maps::MapType::from_raw(m.map_type) {
            let spec = duet_maps::MapSpec {
                name: m.name.clone(),
                map_type,
                key_size: m.key_size,
                value_size: m.value_size,
                max_entries: m.max_entries,
                flags: m.flags,
            };
            spec.validate().with_context(|| format!("map `{}`", m.name))?;
        }
    }
    let bpf_maps = match &out.bpf {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let object = Object::parse(&bytes).with_context(|| format!("{} does not load", path.display()))?;
            crate::objects::check_ring_buffers(&object)?;
            check_no_panics(&object, dir)?;
            Some((object_summary(&object), object_maps(&object)))
        }
        None => None,
    };
    if let (Some((_, bpf_maps)), Some(_)) = (&bpf_maps, &out.wasm) {
        check_same_maps(bpf_maps, &out.wasm_maps)?;
    }
    Ok(bpf_maps)
}

/// `duet new`: scaffolds the crate `name` in the current directory.
pub fn new(name: &str, sdk: Option<PathBuf>) -> Result<()> {
    let sdk = match sdk {
        Some(path) => path.canonicalize().with_context(|| format!("no SDK at {}", path.display()))?,
        None => duet_build::scaffold::default_sdk_path()
            .context("this duet binary does not know where the duet SDK is; pass --sdk <duet checkout>/crates/sdk")?,
    };
    let dir = Path::new(name);
    let files = duet_build::scaffold::new_crate(dir, name, &sdk).with_context(|| format!("cannot create `{name}`"))?;
    for file in &files {
        eprintln!("  created {}", file.display());
    }
    eprintln!(
        "\nnext:\n  cd {name}\n  cargo test          # unit tests on the host\n  duet build          # target/duet/{name}.bpf.o and target/duet/{name}.wasm"
    );
    Ok(())
}

// === helpers ===

/// `name (kind)` of every program of an object.
fn object_summary(object: &Object) -> String {
    let programs: Vec<String> = object.programs.iter().map(|p| format!("{} ({})", p.name, p.section)).collect();
    programs.join(", ")
}

/// The BTF-defined maps of an object, as manifest entries.
fn object_maps(object: &Object) -> Vec<MapEntry> {
    object
        .maps
        .iter()
        .filter(|m| matches!(m.origin, MapOrigin::BtfMaps | MapOrigin::Legacy))
        .map(|m| MapEntry {
            name: m.name.clone(),
            map_type: m.map_type,
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            flags: m.flags,
        })
        .collect()
}

/// A panic in BPF code ends in the SDK's panic handler, an endless loop (`ja -1`) the kernel
/// verifier rejects. Finding it here gives the source line and the fix instead of a verifier
/// log at load time. The lines named are the program crate's own (under `dir`): for each branch
/// into the panic, the nearest line of the crate at or before it, since the branch itself
/// usually sits in inlined `core` or SDK code (`Option::unwrap`, slice indexing).
fn check_no_panics(object: &Object, dir: &Path) -> Result<()> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let mut found = Vec::new();
    for p in &object.programs {
        let line = |pc: usize| {
            p.line_for(pc).filter(|l| l.line != 0).map(|l| {
                let file = Path::new(&l.file).file_name().map_or(l.file.as_str(), |f| f.to_str().unwrap_or(""));
                format!("{file}:{}: {}", l.line, l.source.trim())
            })
        };
        let user_line = |pc: usize| {
            p.line_for(pc).filter(|l| l.line != 0).and_then(|l| {
                let relative = Path::new(&l.file).strip_prefix(&dir).ok()?;
                Some(format!("{}:{}: {}", relative.display(), l.line, l.source.trim()))
            })
        };
        let insns = p.program.insns();
        // The nearest line of the user's crate at or before instruction index `index`.
        let nearest_user_line = |index: usize| insns[..=index].iter().rev().find_map(|(at, _)| user_line(*at));
        for (pc, insn) in insns {
            if insn.op != duet_isa::Op::Ja || insn.off != -1 {
                continue;
            }
            // Where the panic comes from: the straight-line block that falls into the loop (the
            // call of the panic function, with the line that panicked) and the branches into it.
            let index = insns.iter().position(|(at, _)| at == pc).unwrap_or(0);
            let mut start = index;
            while start > 0 && !matches!(insns[start - 1].1.op, duet_isa::Op::Exit | duet_isa::Op::Ja) {
                start -= 1;
            }
            let block = insns[start].0..=*pc;
            let own = line(*pc);
            let branches: Vec<usize> = insns
                .iter()
                .enumerate()
                .filter(|(_, (at, i))| {
                    matches!(i.op.form(), duet_isa::Form::JmpReg | duet_isa::Form::JmpImm | duet_isa::Form::Ja)
                        && block.contains(&((*at as i64 + 1 + i64::from(i.off)) as usize))
                })
                .map(|(i, _)| i)
                .collect();
            let origins: Vec<usize> = branches.iter().copied().chain(start..index).collect();
            let mut from: Vec<String> = Vec::new();
            for &i in &origins {
                if let Some(l) = nearest_user_line(i)
                    && !from.contains(&l)
                {
                    from.push(l);
                }
            }
            if from.is_empty() {
                // No line of the crate (no debug info for it?): name whatever lines there are.
                for &i in &origins {
                    if let Some(l) = line(insns[i].0)
                        && !from.contains(&l)
                        && Some(&l) != own.as_ref()
                    {
                        from.push(l);
                    }
                }
            }
            let place = if from.is_empty() {
                own.unwrap_or_else(|| format!("instruction {pc}"))
            } else {
                from.join("\n      ")
            };
            found.push(format!("  program `{}` can panic, from:\n      {place}", p.name));
        }
    }
    if !found.is_empty() {
        bail!(
            "the BPF program has panic paths, which the kernel verifier rejects (an endless loop):\n{}\n\
             avoid what can panic in program code: `unwrap`/`expect`, slice indexing (`a[i]`), division by a \
             value that may be zero, `checked_*`/`saturating_*` multiplication of u64 (it needs 128-bit \
             arithmetic); use the SDK's Option/Result API (`load`, `get`, `get_or_default`) and `if` checks instead",
            found.join("\n")
        );
    }
    Ok(())
}

/// Both artifacts must declare the same maps, or the executors would create different ones.
fn check_same_maps(bpf: &[MapEntry], wasm: &[MapEntry]) -> Result<()> {
    let mut bpf = bpf.to_vec();
    let mut wasm = wasm.to_vec();
    bpf.sort_by(|a, b| a.name.cmp(&b.name));
    wasm.sort_by(|a, b| a.name.cmp(&b.name));
    if bpf != wasm {
        bail!(
            "the .bpf.o and the .wasm declare different maps (a bug in duet, please report it):\n  bpf:  {bpf:?}\n  wasm: {wasm:?}"
        );
    }
    Ok(())
}

fn names(maps: &[MapEntry]) -> String {
    if maps.is_empty() {
        return "none".into();
    }
    maps.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ")
}
