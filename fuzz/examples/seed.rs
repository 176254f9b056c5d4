//! Writes starting corpora for the `decode` and `assemble` targets from the `-- asm` sections of
//! `tests/data/*.data`: `corpus/assemble/<name>` gets the source text, `corpus/decode/<name>`
//! the bytecode of every case that assembles into a valid program.
//!
//! Run from `fuzz/`: `cargo +nightly run --example seed`.

use std::fs;
use std::path::Path;

use duet_isa::{Program, assemble};

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = root.join("../tests/data");
    let asm_dir = root.join("corpus/assemble");
    let bin_dir = root.join("corpus/decode");
    fs::create_dir_all(&asm_dir)?;
    fs::create_dir_all(&bin_dir)?;
    let (mut n_asm, mut n_bin) = (0, 0);
    let mut entries: Vec<_> = fs::read_dir(&data)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "data") {
            continue;
        }
        let text = fs::read_to_string(&path)?;
        let Some(asm) = section(&text, "asm") else { continue };
        let name = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
        fs::write(asm_dir.join(&name), &asm)?;
        n_asm += 1;
        if let Ok(program) = assemble(&asm).map_err(|_| ()).and_then(|i| Program::from_insns(&i).map_err(|_| ())) {
            fs::write(bin_dir.join(&name), program.to_bytes())?;
            n_bin += 1;
        }
    }
    println!("wrote {n_asm} assemble seeds and {n_bin} decode seeds");
    Ok(())
}

/// The body of `-- <name>` up to the next `-- ` header.
fn section(text: &str, name: &str) -> Option<String> {
    let header = format!("-- {name}");
    let mut lines = text.lines().skip_while(|l| l.trim() != header);
    lines.next()?;
    let body: Vec<&str> = lines.take_while(|l| !l.starts_with("-- ")).collect();
    Some(body.join("\n") + "\n")
}
