//! Prints what duet-object makes of an object file: `cargo run -p duet-object --example dump -- <file.o>`.
fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: dump <object.o>");
        std::process::exit(2);
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            std::process::exit(1);
        }
    };
    match duet_object::Object::parse(&bytes) {
        Ok(obj) => {
            println!("license {:?}", obj.license);
            for m in &obj.maps {
                println!("map {m:?}");
            }
            for p in &obj.programs {
                println!("program {} section {} kind {:?} refs {:?}", p.name, p.section, p.kind, p.map_refs);
                for (pc, insn) in p.program.insns() {
                    let line = p
                        .line_for(*pc)
                        .map(|l| format!("  // {}:{} {}", l.file, l.line, l.source.trim()))
                        .unwrap_or_default();
                    println!("{pc:>5}: {}{line}", duet_isa::disassemble_insn(insn));
                }
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
