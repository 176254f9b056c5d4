//! duet's own program sections (`duet/http_request`, `duet/http_response`, `duet/route`), which
//! aya-obj does not know, load with their real section names and their own kinds.

use duet_object::{Object, ProgramKind};
use object::write::{Object as ElfWriter, Symbol, SymbolSection};
use object::{Architecture, BinaryFormat, Endianness, SectionKind, SymbolFlags, SymbolKind, SymbolScope};

/// `mov r0, <ret>; exit`.
fn returns(ret: i32) -> Vec<u8> {
    let mut code = vec![0xb7, 0x00, 0, 0];
    code.extend_from_slice(&ret.to_le_bytes());
    code.extend_from_slice(&[0x95, 0, 0, 0, 0, 0, 0, 0]);
    code
}

/// An ELF eBPF object with one function per `(section, function, code)`, and a GPL license.
fn object_with(programs: &[(&str, &str, Vec<u8>)]) -> Vec<u8> {
    let mut elf = ElfWriter::new(BinaryFormat::Elf, Architecture::Bpf, Endianness::Little);
    for (section, function, code) in programs {
        let id = elf.add_section(Vec::new(), section.as_bytes().to_vec(), SectionKind::Text);
        let offset = elf.append_section_data(id, code, 8);
        elf.add_symbol(Symbol {
            name: function.as_bytes().to_vec(),
            value: offset,
            size: code.len() as u64,
            kind: SymbolKind::Text,
            scope: SymbolScope::Linkage,
            weak: false,
            section: SymbolSection::Section(id),
            flags: SymbolFlags::None,
        });
    }
    let license = elf.add_section(Vec::new(), b"license".to_vec(), SectionKind::Data);
    elf.append_section_data(license, b"GPL\0", 1);
    elf.write().expect("the test object serializes")
}

#[test]
fn duet_sections_load_with_their_real_names_and_kinds() {
    let bytes = object_with(&[
        ("duet/http_request", "gate", returns(1)),
        ("duet/http_response", "stamp", returns(0)),
        ("duet/route", "pick", returns(-1)),
        ("xdp", "pass", returns(2)),
    ]);
    let object = Object::parse(&bytes).expect("an object with duet sections parses");
    let summary: Vec<(&str, &str, ProgramKind)> =
        object.programs.iter().map(|p| (p.name.as_str(), p.section.as_str(), p.kind.clone())).collect();
    assert_eq!(
        summary,
        [
            ("gate", "duet/http_request", ProgramKind::HttpRequest),
            ("pass", "xdp", ProgramKind::Xdp),
            ("pick", "duet/route", ProgramKind::Route),
            ("stamp", "duet/http_response", ProgramKind::HttpResponse),
        ]
    );
    let gate = object.program(Some("gate")).unwrap();
    assert_eq!(gate.program.n_slots(), 2);
    assert!(gate.kind.is_userspace_only());
    assert!(!object.program(Some("pass")).unwrap().kind.is_userspace_only());
    assert_eq!(object.license, "GPL");
}

#[test]
fn a_suffix_after_a_slash_keeps_the_kind_and_other_duet_names_are_refused() {
    let bytes = object_with(&[("duet/http_request/auth", "auth", returns(0))]);
    let object = Object::parse(&bytes).expect("parses");
    assert_eq!(object.programs[0].section, "duet/http_request/auth");
    assert_eq!(object.programs[0].kind, ProgramKind::HttpRequest);

    // Not one of duet's sections: aya-obj's refusal stands.
    for section in ["duet/http_requests", "duet/other", "duet"] {
        let bytes = object_with(&[(section, "f", returns(0))]);
        let err = Object::parse(&bytes).expect_err(section).to_string();
        assert!(err.contains(section), "{section}: {err}");
    }
}

#[test]
fn the_callers_bytes_are_not_changed() {
    let bytes = object_with(&[("duet/route", "pick", returns(0))]);
    let before = bytes.clone();
    Object::parse(&bytes).expect("parses");
    assert_eq!(bytes, before);
}

/// A real compiler's object: clang emits BTF whose `.BTF.ext` names the section by its name,
/// so the line info of a duet section survives only if that name is rewritten too.
#[test]
fn clang_objects_keep_line_info_for_duet_sections() {
    let dir = std::env::temp_dir().join(format!("duet-object-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let src = dir.join("http.c");
    let out = dir.join("http.o");
    std::fs::write(
        &src,
        "__attribute__((section(\"duet/http_request\"), used)) int gate(void *ctx) {\n    return 1;\n}\n\
         __attribute__((section(\"duet/route\"), used)) long pick(void *ctx) {\n    return -1;\n}\n\
         char _license[] __attribute__((section(\"license\"), used)) = \"GPL\";\n",
    )
    .expect("write source");
    let status = std::process::Command::new("clang")
        .args(["-target", "bpf", "-O2", "-g", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        other => {
            let why = format!("clang -target bpf is needed for this test ({other:?})");
            assert!(std::env::var("CI").is_err(), "{why}");
            eprintln!("\n!!! SKIPPED: {why} !!!\n");
            return;
        }
    }
    let bytes = std::fs::read(&out).expect("read object");
    let _ = std::fs::remove_dir_all(&dir);
    let object = Object::parse(&bytes).expect("clang's object parses");
    let gate = object.program(Some("gate")).unwrap();
    assert_eq!((gate.section.as_str(), &gate.kind), ("duet/http_request", &ProgramKind::HttpRequest));
    let line = gate.line_for(0).expect("BTF line info for the duet section");
    assert!(line.source.contains("return 1"), "{line:?}");
    let pick = object.program(Some("pick")).unwrap();
    assert_eq!((pick.section.as_str(), &pick.kind), ("duet/route", &ProgramKind::Route));
    assert!(pick.line_for(0).is_some());
}
