//! The capture replay behind `duet run`, for every engine: frames are read, run and reported one
//! at a time, so memory stays flat whatever the capture's size. Per-packet output (`--json`'s
//! results and packets) is spooled to unlinked temporary files and printed as one document at
//! the end; `--pcap-out` is written as the packets go.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use duet_maps::{Map, MapType};
use serde_json::{Map as JsonMap, Value as Json};

use crate::capture::{Capture, CaptureWriter};
use crate::objects::{MapTypes, RunArgs, dump_maps, dump_maps_typed, hex};

/// Consecutive deadline faults after which a run stops: a program that loops forever would
/// otherwise cost the whole deadline on every packet.
pub(crate) const MAX_CONSECUTIVE_DEADLINES: usize = 3;

/// How many traps are described on stderr as they happen; the rest are counted.
const TRAPS_SHOWN: usize = 10;

/// Why one packet produced no verdict.
pub(crate) struct StepError {
    /// The trap, as the engine describes it.
    pub message: String,
    /// The program ran past its deadline (Wasm), rather than faulting.
    pub deadline: bool,
}

impl StepError {
    /// A fault that is not a deadline.
    pub(crate) fn trap(message: impl ToString) -> Self {
        StepError { message: message.to_string(), deadline: false }
    }
}

/// What a replay saw, for the report.
pub(crate) struct Replayed {
    /// Packets per verdict (`None`: trapped).
    counts: BTreeMap<Option<u64>, usize>,
    n_packets: usize,
    elapsed: Duration,
    /// `--json`: the results and packets, spooled.
    json: Option<JsonSpool>,
}

/// `--json`'s per-packet arrays, written to unlinked temporary files as the packets go.
struct JsonSpool {
    results: Spool,
    packets: Spool,
}

/// One JSON array's items, comma-separated, in an unlinked temporary file (`duet run` and
/// `duet test-run`).
pub(crate) struct Spool {
    file: BufWriter<File>,
    empty: bool,
}

impl Spool {
    pub(crate) fn new(what: &str) -> Result<Spool> {
        let path = std::env::temp_dir().join(format!("duet-run-{}-{what}", std::process::id()));
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .with_context(|| format!("cannot create the temporary file {}", path.display()))?;
        // The file lives on through its descriptor only, so nothing is left behind on any exit.
        let _ = std::fs::remove_file(&path);
        Ok(Spool { file: BufWriter::new(file), empty: true })
    }

    pub(crate) fn push(&mut self, item: impl std::fmt::Display) -> Result<()> {
        if !self.empty {
            self.file.write_all(b",")?;
        }
        self.empty = false;
        write!(self.file, "{item}")?;
        Ok(())
    }

    /// Copies the items to `out`.
    pub(crate) fn copy_to(self, out: &mut impl Write) -> Result<()> {
        let mut file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        std::io::copy(&mut file, out)?;
        Ok(())
    }
}

/// Runs `step` over every frame of `args.pcap`. `step` gets the frame and a buffer to leave the
/// packet in, as the program left it. `take_trace` drains the program's trace lines after each
/// packet.
pub(crate) fn replay(
    args: &RunArgs,
    mut step: impl FnMut(&[u8], &mut Vec<u8>) -> Result<u64, StepError>,
    mut take_trace: impl FnMut() -> Vec<String>,
    label: &dyn Fn(u64) -> String,
) -> Result<Replayed> {
    let mut capture = Capture::open(&args.pcap)?;
    let mut pcap_out = args.pcap_out.as_deref().map(CaptureWriter::create).transpose()?;
    let mut json = if args.json {
        Some(JsonSpool { results: Spool::new("results")?, packets: Spool::new("packets")? })
    } else {
        None
    };
    let progress = std::io::stderr().is_terminal();
    let mut last_report = Instant::now();
    let mut counts: BTreeMap<Option<u64>, usize> = BTreeMap::new();
    let mut n_traps = 0;
    let mut deadlines: Vec<usize> = Vec::new();
    let mut packet = Vec::new();
    let mut elapsed = Duration::ZERO;
    let mut i = 0;
    while let Some(frame) = capture.next_frame() {
        let frame = frame?;
        packet.clear();
        let started = Instant::now();
        let outcome = step(frame.data, &mut packet);
        elapsed += started.elapsed();
        for line in take_trace() {
            eprintln!("trace: {line}");
        }
        let r0 = match outcome {
            Ok(r0) => {
                deadlines.clear();
                Some(r0)
            }
            Err(err) => {
                n_traps += 1;
                if n_traps <= TRAPS_SHOWN {
                    eprintln!("packet {i}: trap: {}", err.message);
                }
                if err.deadline {
                    deadlines.push(i);
                    if deadlines.len() >= MAX_CONSECUTIVE_DEADLINES {
                        let list: Vec<String> = deadlines.iter().map(usize::to_string).collect();
                        bail!(
                            "stopped the run at packet {i}: the program ran past its deadline on {} packets in a row \
                             ({}), so it probably never returns; fix its loop (every packet would cost the whole deadline)",
                            deadlines.len(),
                            list.join(", ")
                        );
                    }
                } else {
                    deadlines.clear();
                }
                None
            }
        };
        *counts.entry(r0).or_default() += 1;
        if let Some(json) = &mut json {
            json.results.push(r0.map_or(Json::Null, Json::from))?;
            match r0 {
                Some(_) => json.packets.push(format_args!("\"{}\"", hex(&packet)))?,
                None => json.packets.push("null")?,
            }
        }
        if let Some(out) = &mut pcap_out {
            let comment = match r0 {
                Some(r0) => label(r0),
                None => "trap".to_owned(),
            };
            let data = if r0.is_some() { &packet[..] } else { frame.data };
            out.write(data, frame.timestamp, &comment)?;
        }
        i += 1;
        if progress && i >= 10_000 && last_report.elapsed() > Duration::from_millis(200) {
            eprint!("\r  {i} packets");
            last_report = Instant::now();
        }
    }
    if progress && i >= 10_000 {
        eprintln!("\r  {i} packets");
    }
    if n_traps > TRAPS_SHOWN {
        eprintln!("... and {} more traps", n_traps - TRAPS_SHOWN);
    }
    if let Some(out) = pcap_out {
        out.finish()?;
    }
    Ok(Replayed { counts, n_packets: i, elapsed, json })
}

/// Prints the outcome: one JSON object with `--json`, else the verdict counts, the speed and the
/// ring-buffer record counts. Fails (after printing) when packets trapped.
pub(crate) fn report(
    args: &RunArgs,
    replayed: Replayed,
    title: &str,
    engine: &str,
    maps: &[(&str, &Map)],
    types: &MapTypes,
    label: &dyn Fn(u64) -> String,
) -> Result<ExitCode> {
    let n_traps = replayed.counts.get(&None).copied().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    if let Some(json) = replayed.json {
        let mut ringbufs = JsonMap::new();
        for (name, map) in maps.iter().filter(|(_, m)| m.map_type() == MapType::RingBuf) {
            let records = map.ringbuf_drain().iter().map(|r| Json::from(hex(r))).collect();
            ringbufs.insert((*name).to_owned(), Json::Array(records));
        }
        out.write_all(b"{\"results\":[")?;
        json.results.copy_to(&mut out)?;
        out.write_all(b"],\"packets\":[")?;
        json.packets.copy_to(&mut out)?;
        write!(out, "],\"ringbufs\":{},\"maps\":{}", Json::Object(ringbufs), dump_maps(maps.iter().copied()))?;
        // Typed views when asked, only where the object's BTF declares types, beside the hex.
        let typed = if args.typed { dump_maps_typed(maps.iter().copied(), types) } else { Json::Null };
        if typed.as_object().is_some_and(|t| !t.is_empty()) {
            write!(out, ",\"maps_typed\":{typed}")?;
        }
        write!(out, "}}")?;
        writeln!(out)?;
    } else {
        writeln!(out, "{title} over {} packets from {}:", replayed.n_packets, args.pcap.display())?;
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for (r0, n) in &replayed.counts {
            *counts.entry(r0.map_or_else(|| "trap".to_owned(), label)).or_default() += n;
        }
        for (label, n) in &counts {
            writeln!(out, "  {label:<16} {n:>8}")?;
        }
        if replayed.n_packets > 0 {
            let ns = replayed.elapsed.as_nanos() as f64 / replayed.n_packets as f64;
            writeln!(out, "  {ns:.0} ns/packet in {engine}")?;
        }
        for (map_name, map) in maps {
            if map.map_type() == MapType::RingBuf {
                writeln!(out, "  ring buffer `{map_name}`: {} records", map.ringbuf_drain().len())?;
            }
        }
    }
    out.flush()?;
    if n_traps > 0 {
        eprintln!(
            "error: {n_traps} of {} packets trapped (no verdict); the first traps are described above",
            replayed.n_packets
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `path` starts like a WebAssembly module.
pub(crate) fn is_wasm(path: &Path) -> Result<bool> {
    let mut magic = [0u8; 4];
    let mut file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let n = file.read(&mut magic).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(n == 4 && &magic == b"\0asm")
}
