//! `duet verify`: run duet's verifier over an object's programs (or a test `.s` file) and
//! report the proof's cost, or every problem found.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use duet_isa::Program;
use duet_verifier::testfile::TestFile;
use duet_verifier::{Config, Rejection, VerifiedProgram, VerifyContext};

/// What `duet verify` was asked to do.
#[derive(Debug)]
pub struct VerifyArgs<'a> {
    /// The `.bpf.o` object, or a verifier test file (`.s`, assembly with `# type:`/`# map:` headers).
    pub input: &'a Path,
    /// Verify only this program (default: every program of the object).
    pub program: Option<&'a str>,
    /// Print the verifier's state trace.
    pub log: bool,
    /// Print one JSON object instead of text.
    pub json: bool,
    /// Apply the kernel's rules for a loader without CAP_PERFMON (no pointer leaks, no pointer
    /// comparisons, no uninitialised stack reads) instead of root's.
    pub unprivileged: bool,
}

/// `duet verify`.
pub fn run(args: &VerifyArgs<'_>) -> Result<ExitCode> {
    let config = Config { log: args.log, unprivileged: args.unprivileged, ..Config::default() };
    let is_asm = args.input.extension().is_some_and(|e| e == "s" || e == "asm");
    let mut out = std::io::stdout().lock();
    if is_asm {
        let text =
            std::fs::read_to_string(args.input).with_context(|| format!("cannot read {}", args.input.display()))?;
        let file = TestFile::parse(&text).map_err(anyhow::Error::msg).with_context(|| {
            format!(
                "{} is not a verifier test file (assembly with `# type:` and `# map:` headers)",
                args.input.display()
            )
        })?;
        let name = args.input.file_stem().map_or_else(|| "program".into(), |s| s.to_string_lossy().into_owned());
        // A test file's `# kernel-caps: bpf` asks for the unprivileged rules too.
        let file_ctx = file.context();
        let unprivileged = config.unprivileged || file_ctx.config.unprivileged;
        let ctx = VerifyContext { config: Config { unprivileged, ..config }, ..file_ctx };
        let result = match Program::from_insns(&file.insns) {
            Ok(program) => duet_verifier::verify(&program, &ctx),
            Err(err) => Err(Rejection {
                diagnostics: vec![duet_verifier::decode_diagnostic(&err)],
                stats: Default::default(),
                log: None,
            }),
        };
        let ok = result.is_ok();
        if args.json {
            print_json(&mut out, args.input, vec![program_json(&name, &result, args.log)])?;
        } else {
            report(&mut out, &name, &result, args.log)?;
        }
        return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }

    let parsed = crate::objects::load_parsed(args.input)?;
    let object = &parsed.object;
    crate::objects::check_ring_buffers(object).with_context(|| format!("cannot load {}", args.input.display()))?;
    // Every program, prepared or refused, in name order; a refused one is reported on its own.
    let mut programs: Vec<&str> = object.programs.iter().map(|p| p.name.as_str()).collect();
    programs.extend(parsed.refused.iter().map(|r| r.name.as_str()));
    programs.sort_unstable();
    programs.dedup();
    if let Some(name) = args.program {
        if !programs.contains(&name) {
            parsed.program(Some(name))?;
        }
        programs.retain(|p| *p == name);
    }
    let mut all_ok = true;
    let mut json = Vec::new();
    for name in programs {
        if let Some(refused) = parsed.refused.iter().find(|r| r.name == name) {
            all_ok = false;
            if args.json {
                json.push(crate::objects::refused_json(refused));
            } else {
                writeln!(out, "{name}: refused (section `{}`): {}", refused.section, refused.reason)?;
            }
            continue;
        }
        let program = object.program(Some(name))?;
        let Some(mut ctx) = VerifyContext::for_object_program(object, program) else {
            // Nothing is wrong with a program duet does not verify: say so, and do not fail.
            let why = if program.kind.is_kernel_only() {
                format!(
                    "verified by the kernel only: duet's verifier does not model {} programs, which run only in \
                     the kernel (`duet load` runs the kernel's verifier)",
                    crate::objects::kind_name(&program.kind)
                )
            } else {
                format!(
                    "duet does not verify {} programs (section `{}`); the kernel's verifier does: `duet load`",
                    crate::objects::kind_name(&program.kind),
                    program.section
                )
            };
            if args.json {
                json.push(serde_json::json!({
                    "name": name, "section": program.section, "kind": crate::objects::kind_name(&program.kind),
                    "status": "skipped", "reason": why,
                }));
            } else {
                writeln!(out, "{name}: skipped: {why}")?;
            }
            continue;
        };
        ctx.config = config.clone();
        let result = duet_verifier::verify(&program.program, &ctx);
        all_ok &= result.is_ok();
        if args.json {
            json.push(program_json(name, &result, args.log));
        } else {
            report(&mut out, name, &result, args.log)?;
        }
    }
    if args.json {
        print_json(&mut out, args.input, json)?;
    }
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn print_json(out: &mut impl Write, input: &Path, programs: Vec<serde_json::Value>) -> Result<()> {
    let ok = programs.iter().all(|p| p["status"] != "rejected" && p["status"] != "refused");
    let doc = serde_json::json!({ "input": input.display().to_string(), "ok": ok, "programs": programs });
    writeln!(out, "{doc}")?;
    Ok(())
}

/// One program's outcome as JSON: the proof's cost, or every diagnostic with its instruction,
/// source line and help.
fn program_json(name: &str, result: &Result<VerifiedProgram, Rejection>, with_log: bool) -> serde_json::Value {
    let stats = match result {
        Ok(v) => v.stats(),
        Err(r) => &r.stats,
    };
    let mut v = match result {
        Ok(v) => {
            let s = v.stats();
            serde_json::json!({
                "name": name, "status": "verified", "instructions": v.program().insns().len(),
                "processed": s.insns_processed, "states": s.states, "peak_states": s.peak_states,
                "ms": s.time.as_secs_f64() * 1e3,
                "stack_depth": v.stack_depths().iter().map(|(_, d)| d).collect::<Vec<_>>(),
            })
        }
        Err(r) => {
            let diagnostics: Vec<serde_json::Value> = r
                .diagnostics
                .iter()
                .map(|d| {
                    serde_json::json!({
                        "code": d.code.name(), "pc": d.pc, "insn": d.insn, "message": d.message,
                        "state": d.state, "notes": d.notes, "help": d.help,
                        "source": d.source.as_ref().map(|l| serde_json::json!({
                            "file": l.file, "line": l.line, "column": l.column, "text": l.text,
                        })),
                    })
                })
                .collect();
            serde_json::json!({ "name": name, "status": "rejected", "diagnostics": diagnostics })
        }
    };
    v["stats"] = stats_json(stats);
    let log = match result {
        Ok(p) => p.log(),
        Err(r) => r.log.as_deref(),
    };
    if with_log && let Some(log) = log {
        v["log"] = serde_json::Value::from(log);
    }
    v
}

/// The verification statistics of one program, as the kernel's log level 2 summary gives them
/// ("processed N insns (limit 1000000) max_states_per_insn M total_states T peak_states P",
/// "verification time U usec"), and the states duet pruned.
fn stats_json(s: &duet_verifier::Stats) -> serde_json::Value {
    serde_json::json!({
        "insns_processed": s.insns_processed,
        "insn_limit": duet_verifier::Config::default().max_insns,
        "max_states_per_insn": s.max_states_per_insn,
        "total_states": s.states,
        "peak_states": s.peak_states,
        "pruned": s.pruned,
        "time_us": s.time.as_micros() as u64,
    })
}

/// Prints one program's outcome.
fn report(out: &mut impl Write, name: &str, result: &Result<VerifiedProgram, Rejection>, show_log: bool) -> Result<()> {
    let log = match result {
        Ok(v) => v.log(),
        Err(r) => r.log.as_deref(),
    };
    if show_log && let Some(log) = log {
        writeln!(out, "--- state trace of {name} ---")?;
        out.write_all(log.as_bytes())?;
        writeln!(out, "--- end of trace ---")?;
    }
    match result {
        Ok(v) => {
            let s = v.stats();
            writeln!(
                out,
                "{name}: verified: {} instructions, {} processed, {} states explored ({} peak), {:.3} ms",
                v.program().insns().len(),
                s.insns_processed,
                s.states,
                s.peak_states,
                s.time.as_secs_f64() * 1e3
            )?;
        }
        Err(rejection) => {
            writeln!(out, "{name}: rejected\n")?;
            writeln!(out, "{rejection}")?;
        }
    }
    Ok(())
}
