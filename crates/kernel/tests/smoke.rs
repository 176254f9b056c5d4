//! Exact results of `test_run` on a small C object built from tests/fixtures/smoke.bpf.c:
//! verdicts, tail calls, per-CPU maps, global data, ring buffers, packet growth, socket filters,
//! and the errors users get for common mistakes.

mod common;

use duet_kernel::{KernelError, MapDump, ProgramKind, TestRunInput, TestRunOutput, list_programs, test_run};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

fn smoke_object() -> Option<Vec<u8>> {
    common::compile_fixture("smoke", &[])
}

fn input<'a>(object: &'a [u8], program: &'a str, packets: &'a [Vec<u8>]) -> TestRunInput<'a> {
    TestRunInput { object, program, packets, maps_in: &[], prog_arrays: &[], repeat: 1 }
}

fn u32_le(v: u32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

fn u64_le(v: u64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

fn single(out: &TestRunOutput, map: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    out.maps[map]
        .iter()
        .map(|(k, v)| match v {
            MapDump::Single(v) => (k.clone(), v.clone()),
            MapDump::PerCpu(_) => panic!("{map} dumped as per-CPU"),
        })
        .collect()
}

fn per_cpu(out: &TestRunOutput, map: &str) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
    out.maps[map]
        .iter()
        .map(|(k, v)| match v {
            MapDump::PerCpu(v) => (k.clone(), v.clone()),
            MapDump::Single(_) => panic!("{map} dumped as shared"),
        })
        .collect()
}

/// The same value on CPU 0 and `rest` on every other CPU.
fn cpu0(value: Vec<u8>, rest: Vec<u8>) -> Vec<Vec<u8>> {
    let mut values = vec![rest; common::possible_cpus()];
    values[0] = value;
    values
}

#[test]
fn lists_programs_without_the_kernel() {
    let Some(object) = smoke_object() else { return };
    let programs = list_programs(&object).unwrap();
    let listed: Vec<_> = programs.iter().map(|p| (p.name.as_str(), p.kind.clone())).collect();
    assert_eq!(
        listed,
        [
            ("grow", ProgramKind::Xdp),
            ("smoke", ProgramKind::Xdp),
            ("sock_len", ProgramKind::SocketFilter),
            ("tail_tx", ProgramKind::Xdp),
        ]
    );
}

#[test]
fn verdicts_tail_calls_maps_globals_and_ringbuf() {
    let Some(object) = smoke_object() else { return };
    if !common::kernel_access() {
        return;
    }
    let packets = [common::frame(60, 1), common::frame(60, 9), common::frame(10, 1)];
    let maps_in = [("verdicts".to_owned(), u32_le(1), u32_le(XDP_DROP)), ("bytes".to_owned(), u32_le(1), u64_le(5))];
    let prog_arrays = [("jumps".to_owned(), 0, "tail_tx".to_owned())];
    let cpus_before = common::allowed_cpus();
    let out =
        test_run(&TestRunInput { maps_in: &maps_in, prog_arrays: &prog_arrays, ..input(&object, "smoke", &packets) })
            .unwrap();
    assert_eq!(common::allowed_cpus(), cpus_before, "the CPU affinity is restored");

    let results: Vec<_> = out.packets.iter().map(|p| p.result.clone()).collect();
    assert_eq!(results[..2], [Ok(XDP_DROP), Ok(XDP_TX)]);
    let refusal = results[2].as_ref().unwrap_err();
    assert!(refusal.starts_with("EINVAL: "), "a 10-byte frame is shorter than Ethernet: {refusal}");
    assert_eq!(out.packets[0].data_out, packets[0]);
    assert_eq!(out.packets[1].data_out, packets[1]);
    assert!(out.packets[2].data_out.is_empty());

    let zero = u32_le(0);
    assert_eq!(
        single(&out, "counters"),
        [(zero.clone(), u64_le(2)), (u32_le(1), u64_le(0)), (u32_le(2), u64_le(0)), (u32_le(3), u64_le(0))]
    );
    assert_eq!(single(&out, "verdicts"), [(u32_le(1), u32_le(XDP_DROP))]);
    assert_eq!(
        per_cpu(&out, "bytes"),
        [(zero.clone(), cpu0(u64_le(120), u64_le(0))), (u32_le(1), vec![u64_le(5); common::possible_cpus()])]
    );
    assert_eq!(
        per_cpu(&out, "first_byte"),
        [(u32_le(1), cpu0(u32_le(1), u32_le(0))), (u32_le(9), cpu0(u32_le(1), u32_le(0)))]
    );
    assert_eq!(single(&out, ".bss"), [(zero.clone(), u64_le(2))]);
    assert_eq!(single(&out, ".data"), [(zero.clone(), u32_le(7))]);
    assert_eq!(single(&out, ".rodata"), [(zero, u32_le(0xd0e7))]);
    assert!(!out.maps.contains_key("jumps") && !out.maps.contains_key("events"));
    assert_eq!(out.ringbufs["events"], [u32_le(60), u32_le(60)]);
}

#[test]
fn seeded_globals_and_repeat() {
    let Some(object) = smoke_object() else { return };
    if !common::kernel_access() {
        return;
    }
    // Without a tail-call target the program falls through to `XDP_PASS + bias - 7`.
    let packets = [common::frame(60, 9)];
    let maps_in = [(".data".to_owned(), u32_le(0), u32_le(8))];
    let out = test_run(&TestRunInput { maps_in: &maps_in, repeat: 10, ..input(&object, "smoke", &packets) }).unwrap();
    assert_eq!(out.packets[0].result, Ok(XDP_PASS + 1));
    assert_eq!(single(&out, "counters")[0].1, u64_le(10), "every repetition runs the program");
    assert_eq!(out.ringbufs["events"].len(), 10);
}

#[test]
fn packet_growth_comes_back_in_data_out() {
    let Some(object) = smoke_object() else { return };
    if !common::kernel_access() {
        return;
    }
    let packets = [common::frame(60, 1)];
    let out = test_run(&input(&object, "grow", &packets)).unwrap();
    let outcome = &out.packets[0];
    assert_eq!(outcome.result, Ok(XDP_PASS));
    assert_eq!(outcome.data_out.len(), 60 + 16 + 32);
    assert_eq!(outcome.data_out[16..76], packets[0][..]);
}

#[test]
fn socket_filters_run_too() {
    let Some(object) = smoke_object() else { return };
    if !common::kernel_access() {
        return;
    }
    let packets = [common::frame(60, 1), common::frame(100, 1)];
    let out = test_run(&input(&object, "sock_len", &packets)).unwrap();
    let results: Vec<_> = out.packets.iter().map(|p| p.result.clone()).collect();
    // The kernel's skb test run consumes the Ethernet header (eth_type_trans) before the program
    // runs, so skb->len is the frame length minus 14.
    assert_eq!(results, [Ok(60 - 14), Ok(100 - 14)]);
}

#[test]
fn mistakes_get_errors_that_name_the_culprit() {
    let Some(object) = smoke_object() else { return };
    if !common::kernel_access() {
        return;
    }
    let packets = [common::frame(60, 1)];
    let run = |program, maps_in: &[(String, Vec<u8>, Vec<u8>)], prog_arrays: &[(String, u32, String)]| {
        test_run(&TestRunInput { maps_in, prog_arrays, ..input(&object, program, &packets) }).unwrap_err()
    };

    let err = run("nope", &[], &[]);
    assert!(matches!(err, KernelError::ProgramNotFound { .. }), "{err}");
    assert!(err.to_string().contains("grow, smoke, sock_len, tail_tx"), "{err}");

    let err = run("smoke", &[(".rodata".to_owned(), u32_le(0), u32_le(1))], &[]);
    assert!(matches!(err, KernelError::MapReadOnly { .. }), "{err}");

    let err = run("smoke", &[("verdicts".to_owned(), vec![1], u32_le(1))], &[]);
    assert_eq!(err.to_string(), "map `verdicts` has key size 4 bytes, but 1 bytes were given");

    let err = run("smoke", &[("events".to_owned(), u32_le(0), u32_le(1))], &[]);
    assert!(matches!(err, KernelError::MapNotWritable { .. }), "{err}");

    let err = run("smoke", &[("missing".to_owned(), u32_le(0), u32_le(1))], &[]);
    assert!(matches!(err, KernelError::MapNotFound { .. }), "{err}");

    let err = run("smoke", &[], &[("counters".to_owned(), 0, "tail_tx".to_owned())]);
    assert!(matches!(err, KernelError::NotProgramArray { .. }), "{err}");
}

#[test]
fn unknown_sections_refuse_only_their_programs() {
    let Some(object) = common::compile_fixture("smoke", &["BOGUS_SECTION"]) else { return };
    // The program in the bogus section is left out; the others are listed and run.
    let programs = list_programs(&object).expect("the other programs are listed");
    assert!(programs.iter().any(|p| p.name == "smoke"), "{programs:?}");
    assert!(!programs.iter().any(|p| p.name == "in_bogus_section"), "{programs:?}");
    if !common::kernel_access() {
        return;
    }
    test_run(&input(&object, "smoke", &[])).expect("a bogus section costs only its own program");
    let err = test_run(&input(&object, "in_bogus_section", &[])).unwrap_err();
    assert!(
        matches!(&err, KernelError::ProgramRefused { program, reason }
            if program == "in_bogus_section" && reason.contains("unknown section name `bogus`")),
        "{err}"
    );
}

#[test]
fn verifier_rejections_carry_the_log_and_cost_only_their_program() {
    let Some(object) = common::compile_fixture("smoke", &["UNCHECKED_READ"]) else { return };
    if !common::kernel_access() {
        return;
    }
    // A program the kernel rejects is left out when the run does not need it.
    test_run(&input(&object, "smoke", &[])).expect("the rejected program is not the one to run");
    let err = test_run(&input(&object, "unchecked", &[])).unwrap_err();
    let KernelError::Rejected { program, log, .. } = &err else { panic!("expected a rejection, got {err}") };
    assert_eq!(program, "unchecked");
    assert!(log.contains("invalid access to packet"), "{log}");
    assert!(err.to_string().contains("verifier log:\ninvalid") || err.to_string().contains("invalid access to packet"));
}

#[test]
fn pinned_maps_leave_nothing_behind() {
    let Some(object) = common::compile_fixture("smoke", &["PINNED"]) else { return };
    if !common::kernel_access() {
        return;
    }
    let leftovers = || -> Vec<String> {
        let prefix = format!("duet-test-run-{}-", std::process::id());
        let Ok(dir) = std::fs::read_dir("/sys/fs/bpf") else { return Vec::new() };
        dir.flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(&prefix) || name == "counters")
            .collect()
    };
    let packets = [common::frame(60, 1)];
    for _ in 0..2 {
        let out = test_run(&input(&object, "smoke", &packets)).unwrap();
        // A reused pinned map would carry the first run's count into the second.
        assert_eq!(single(&out, "counters")[0].1, u64_le(1));
        assert_eq!(leftovers(), Vec::<String>::new());
    }
}
