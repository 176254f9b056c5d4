//! The kernel commands: `load`, `attach`, `ps`, `detach`, `maps`, `events`, `test-run` and
//! `bench-kernel`. Everything that touches the kernel goes through duet-kernel; this module
//! parses arguments and prints.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use duet_kernel::{
    AttachRequest, Attachment, Hook, KernelError, MapDump, MapEntries, PinnedMaps, TcDirection, TestRunConfig,
    TestRunInput, TestRunner, XdpMode,
};
use duet_maps::MapValue;
use serde_json::{Map as JsonMap, Value as Json, json};

use crate::capture::{Capture, CaptureWriter};
use crate::objects;
use crate::replay::Spool;

/// The variable that moves the pin root away from `/sys/fs/bpf/duet` (tests use a private one).
const PIN_ROOT_VAR: &str = "DUET_PIN_ROOT";

/// What `--help` says about pin roots, after the commands that use one.
const PIN_ROOT_HELP: &str = "\
Pin root:
  Attachments live under a pin root on bpffs: --root <DIR>, else $DUET_PIN_ROOT, else
  /sys/fs/bpf/duet. Everyone who uses the same root shares its attachments (and `duet detach
  all` removes all of them); give a team, a tool or a test a root of its own, e.g.
  DUET_PIN_ROOT=/sys/fs/bpf/duet-ci. Ids are the kernel's link ids (as `bpftool link` shows
  them): an id never names another attachment later.
  Run duet in the host's mount namespace: under `ip netns exec` /sys/fs/bpf is not the host's
  bpffs, so duet refuses to pin there; use `duet attach --netns <name>` instead.";

/// What `--help` says for the commands that pin nothing.
const NO_PINS_HELP: &str = "\
Pins nothing: every program and map is released when the command ends (maps that ask to be
pinned by name get a private bpffs directory, removed on exit), so --root and $DUET_PIN_ROOT
do not apply.";

const ATTACH_EXAMPLES: &str = "\
Examples:
  duet attach fw.o --program xdp_fw --xdp eth0 [--skb]
  duet attach fw.o --xdp veth1 --netns blue
  duet attach tc.o --tc eth0 --direction egress
  duet attach probes.o --kprobe tcp_v4_connect
  duet attach probes.o --tracepoint sock/inet_sock_set_state
  duet attach mesh.o --cgroup /sys/fs/cgroup/app --connect4
  duet attach mesh.o --cgroup /sys/fs/cgroup/app --sock-ops
  duet attach capture.bpf.o --program inbound --sk-lookup /run/netns/pod";

const MAPS_EXAMPLES: &str = "\
Examples:
  duet maps 7                                   every map, hex
  duet maps 7 --typed                           typed where the object's BTF declared types
  duet maps 7 --json --typed > maps.json        {\"maps\": ..., \"maps_typed\": ...}
  duet maps set 7 BLOCKLIST 0a000001 01
  duet maps set --typed 7 CONFIG 0 '{\"rate\": 1, \"burst\": 2}'
  duet maps set --typed 7 BUCKETS '[10, 0, 0, 1]' '{\"tokens\": 5}'
  duet maps delete 7 BLOCKLIST 0a000001";

const TEST_RUN_EXAMPLES: &str = "\
Examples:
  duet test-run fw.bpf.o --pcap day.pcap
  duet test-run fw.bpf.o --pcap day.pcap --json --typed --maps-in seeds.json
  diff <(duet test-run fw.bpf.o --pcap day.pcap --json) <(duet run fw.bpf.o --pcap day.pcap --json)
  seeds.json: {\"BLOCKLIST\": {\"0a000001\": \"01\"}, \"CONFIG\": [{\"key\": 0, \"value\": {\"rate\": 1}}]}";

/// Commands that run programs in the Linux kernel. They need root (CAP_BPF and CAP_NET_ADMIN).
///
/// Attachments are pinned under <root>/<id>/ (root: --root, else $DUET_PIN_ROOT, else
/// /sys/fs/bpf/duet), so they outlive the `duet` process and later `duet ps`, `maps`, `events`
/// and `detach` find them.
#[derive(Subcommand, Debug)]
pub(crate) enum KernelCommand {
    /// Load every program of an object into the kernel, where the kernel verifier checks it,
    /// then unload it. On rejection, prints the verifier log.
    #[command(after_help = NO_PINS_HELP)]
    Load {
        /// The `.bpf.o` file.
        object: PathBuf,
        /// Print one JSON object: `{"ok": true, "programs": [...]}`, or `{"ok": false, "error":
        /// ...}` with the kernel verifier's log (exit code 1).
        #[arg(long)]
        json: bool,
    },
    /// Attach a program to a kernel hook and pin it (program, link, maps) under <root>/<id>/
    /// (see "Pin root" below); prints the id that `duet ps`, `maps`, `events` and `detach` take.
    #[command(after_help = format!("{ATTACH_EXAMPLES}\n\n{PIN_ROOT_HELP}"))]
    Attach(AttachArgs),
    /// List what duet has attached: id, program, hook, target, since when, run count and time.
    ///
    /// Run counts and times need `sysctl -w kernel.bpf_stats_enabled=1` (off by default because
    /// it adds a clock read to every run).
    #[command(after_help = PIN_ROOT_HELP)]
    Ps {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        root: RootArg,
    },
    /// Detach an attachment (by id, attachment directory, or `all`) and remove its pins; also
    /// removes what killed `duet attach` processes left under the pin root.
    #[command(after_help = PIN_ROOT_HELP)]
    Detach {
        /// An id from `duet ps`, an attachment directory, or `all`: every attachment under the
        /// pin root (--root or $DUET_PIN_ROOT), and nothing under any other root.
        target: String,
        #[command(flatten)]
        root: RootArg,
    },
    /// Dump the maps of an attachment (or of any pinned map or directory of pinned maps), or
    /// edit one entry with `set`/`delete`.
    #[command(after_help = format!("{MAPS_EXAMPLES}\n\n{PIN_ROOT_HELP}"))]
    Maps(MapsArgs),
    /// Stream the records of an attachment's ring buffer or perf event array as JSON lines until
    /// Ctrl-C (or --count).
    ///
    /// Each line: {"map": "<name>", "ts_ns": <receive time, ns since the Unix epoch>,
    /// "len": <bytes>, "data": "<hex>"}. The timestamp is when duet read the record. A perf event
    /// array's samples end with the kernel's padding (the record plus its 4-byte size is a
    /// multiple of 8); samples the kernel dropped because a CPU's buffer was full are counted on
    /// stderr when the stream ends.
    ///
    /// Example: `sudo duet events 3 --map EVENTS --count 10`
    #[command(after_help = PIN_ROOT_HELP)]
    Events {
        /// An id from `duet ps`, an attachment directory, or a pinned ring buffer or perf event
        /// array.
        target: String,
        /// The ring buffer or perf event array [default: the attachment's only one].
        #[arg(long)]
        map: Option<String>,
        /// Stop after this many records.
        #[arg(long)]
        count: Option<u64>,
        #[command(flatten)]
        root: RootArg,
    },
    /// Run a program over every frame of a pcap/pcapng capture in the kernel with
    /// BPF_PROG_TEST_RUN; `--json` prints the same shape as `duet run --json`, so the two diff.
    /// The capture is read and run one frame at a time: memory stays flat whatever its size.
    #[command(after_help = format!("{TEST_RUN_EXAMPLES}\n\n{NO_PINS_HELP}"))]
    TestRun {
        /// The `.bpf.o` file.
        object: PathBuf,
        /// The capture (pcap or pcapng, Ethernet link type).
        #[arg(long)]
        pcap: PathBuf,
        /// Program to run (needed when the object has several that can test-run).
        #[arg(long)]
        program: Option<String>,
        /// Print one JSON object: {"results": [r0 per packet, null if the kernel refused it],
        /// "packets": ["<the packet as the program left it, hex>" or null, ...], "ringbufs":
        /// {"<map>": ["<record hex>", ...]}, "maps": {"<map>": {"<key hex>": "<value hex>"}}}.
        /// Maps are listed in the order the program declared them (others by name), as `duet
        /// run --json` lists them for the `.bpf.o` and its `.wasm`, so the three documents diff
        /// line for line.
        #[arg(long)]
        json: bool,
        /// With --json: add "maps_typed", every map whose key and value types the object's BTF
        /// declares, as typed JSON beside the hex "maps" (as `duet run --json --typed`).
        #[arg(long, requires = "json")]
        typed: bool,
        /// Write the packets as the program left them to this pcapng file, each with its verdict
        /// as the packet comment (a refused packet is written as it came).
        #[arg(long, value_name = "FILE")]
        pcap_out: Option<PathBuf>,
        /// BPF_PROG_TEST_RUN repetitions per packet (map side effects repeat too).
        #[arg(long, default_value_t = 1)]
        repeat: u32,
        /// Seed maps before the run from a JSON file in the `duet run --json` maps shape, read as
        /// `duet run --maps-in` reads it: for a map with BTF types, typed values (and keys that
        /// are not hex), or a list [{"key": K, "value": V}, ...]; per-CPU maps take one value
        /// for every CPU or a list of one per CPU.
        #[arg(long)]
        maps_in: Option<PathBuf>,
        /// Fill a prog array slot for tail calls, as MAP:SLOT=PROGRAM (as `duet run`); the
        /// programs named are loaded with the one that runs.
        #[arg(long = "tail-call", value_name = "MAP:SLOT=PROGRAM", value_parser = objects::parse_tail_call)]
        tail_calls: Vec<objects::TailCall>,
    },
    /// Measure a program's time per packet in the kernel (BPF_PROG_TEST_RUN, JIT if enabled),
    /// repeating each packet often enough to be far above the clock's resolution.
    #[command(after_help = NO_PINS_HELP)]
    BenchKernel {
        /// The `.bpf.o` file.
        object: PathBuf,
        /// The capture (pcap or pcapng, Ethernet link type).
        #[arg(long)]
        pcap: PathBuf,
        /// Program to run (needed when the object has several that can test-run).
        #[arg(long)]
        program: Option<String>,
        /// Repetitions per packet [default: calibrated, so each packet runs at least 1 ms].
        #[arg(long)]
        repeat: Option<u32>,
        /// Print one JSON object instead of a sentence.
        #[arg(long)]
        json: bool,
    },
}

/// Where to attach: exactly one hook.
#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("hook").required(true).args(["xdp", "tc", "kprobe", "tracepoint", "cgroup"]))]
pub(crate) struct AttachArgs {
    /// The `.bpf.o` file.
    object: PathBuf,
    /// The program to attach [default: the object's only program that fits the hook].
    #[arg(long)]
    program: Option<String>,
    /// XDP on this network interface (native mode; add --skb for generic mode).
    #[arg(long, value_name = "IFACE")]
    xdp: Option<String>,
    /// Generic (skb) XDP, for drivers without native XDP.
    #[arg(long, requires = "xdp")]
    skb: bool,
    /// TC (tcx, Linux 6.6+) on this network interface; needs --direction.
    #[arg(long, value_name = "IFACE", requires = "direction")]
    tc: Option<String>,
    /// The TC direction.
    #[arg(long, value_enum, requires = "tc")]
    direction: Option<Direction>,
    /// The network namespace of the --xdp/--tc interface (a name from `ip netns list`, or a path).
    #[arg(long, value_name = "NAME")]
    netns: Option<String>,
    /// A kernel function, for a kprobe or kretprobe program (the program's section says which).
    #[arg(long, value_name = "FUNCTION")]
    kprobe: Option<String>,
    /// A tracepoint, as <category>/<name> (see /sys/kernel/tracing/events).
    #[arg(long, value_name = "CATEGORY/NAME")]
    tracepoint: Option<String>,
    /// A cgroup v2 directory, with --connect4, --connect6 or --sock-ops.
    #[arg(long, value_name = "PATH")]
    cgroup: Option<PathBuf>,
    /// Attach a cgroup/connect4 (sock_addr) program to --cgroup.
    #[arg(long, requires = "cgroup", conflicts_with_all = ["sock_ops", "connect6"])]
    connect4: bool,
    /// Attach a cgroup/connect6 (sock_addr) program to --cgroup.
    #[arg(long, requires = "cgroup", conflicts_with = "sock_ops")]
    connect6: bool,
    /// Attach a sockops program to --cgroup.
    #[arg(long, requires = "cgroup")]
    sock_ops: bool,
    /// Attach an sk_lookup program to a network namespace, given by its file:
    /// /proc/self/ns/net (duet's own), /run/netns/<name> (ip netns), /proc/<pid>/ns/net.
    #[arg(long, value_name = "NETNS_FILE")]
    sk_lookup: Option<PathBuf>,
    #[command(flatten)]
    root: RootArg,
}

/// `--root`, shared by the commands that pin or read attachments.
#[derive(Args, Debug)]
pub(crate) struct RootArg {
    /// The pin root the attachments live under [default: $DUET_PIN_ROOT, else /sys/fs/bpf/duet].
    #[arg(long, value_name = "DIR", global = true)]
    root: Option<PathBuf>,
}

impl RootArg {
    /// `--root`, else `$DUET_PIN_ROOT`, else /sys/fs/bpf/duet.
    fn path(&self) -> PathBuf {
        self.root.clone().unwrap_or_else(pin_root)
    }
}

/// A TC direction on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum Direction {
    /// Packets the interface receives.
    Ingress,
    /// Packets the interface sends.
    Egress,
}

/// `duet maps <id|path> [--json]`, `duet maps set ...`, `duet maps delete ...`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct MapsArgs {
    #[command(subcommand)]
    action: Option<MapsAction>,
    /// An id from `duet ps`, an attachment directory, or a pinned map (or directory of them).
    target: Option<String>,
    /// Print {"<map>": {"<key hex>": "<value hex>" or ["<per-CPU hex>", ...]}}, the shape of
    /// `duet run --json`'s "maps": maps in the order the program declared them (as `duet
    /// attach` recorded it; by name for attachments made before duet recorded it), entries by
    /// key bytes.
    #[arg(long)]
    json: bool,
    /// Show keys and values as typed JSON (structs as objects, byte strings as text, enums by
    /// name, as bpftool does) for maps whose types the object's BTF declared when it was
    /// attached; other maps stay hex. With --json, print {"maps": <the hex maps>, "maps_typed":
    /// {"<map>": [{"key": K, "value": V}, ...]}}, the shape of `duet run --json --typed`.
    #[arg(long)]
    typed: bool,
    #[command(flatten)]
    root: RootArg,
}

#[derive(Subcommand, Debug)]
enum MapsAction {
    /// Set one entry, e.g. block 10.0.0.1: `duet maps set 1 BLOCKLIST 0a000001 01`; with typed
    /// JSON: `duet maps set --typed 1 CONFIG 0 '{"rate": 1, "burst": 2}'`.
    Set {
        /// An id from `duet ps`, an attachment directory, or a pinned map.
        target: String,
        /// The map name.
        map: String,
        /// The key as hex bytes, in the map's byte order (with --typed: typed JSON).
        key: String,
        /// The value as hex bytes; for a per-CPU map one value for every CPU, or one per CPU
        /// (with --typed: typed JSON).
        #[arg(required = true)]
        values: Vec<String>,
        /// Read the key and values as JSON of the map's types, which `duet attach` recorded from
        /// the object's BTF: numbers, {"member": ...} objects, text for byte arrays, enum
        /// variant names. A word that is not JSON is a string (`ALLOW`); a quoted string of
        /// hex digits is raw bytes, and so is a side without a type. Typed JSON is read by the
        /// rule `--maps-in` uses.
        #[arg(long)]
        typed: bool,
    },
    /// Delete one entry of a hash-like map.
    Delete {
        /// An id from `duet ps`, an attachment directory, or a pinned map.
        target: String,
        /// The map name.
        map: String,
        /// The key as hex bytes.
        key: String,
    },
}

/// Runs one kernel command.
pub(crate) fn run(command: KernelCommand) -> Result<ExitCode> {
    // Fail fast, before reading any file, when this process may not use BPF at all.
    require_access()?;
    match command {
        KernelCommand::Load { object, json } => load(&object, json),
        KernelCommand::Attach(args) => attach(args),
        KernelCommand::Ps { json, root } => ps(json, &root.path()),
        KernelCommand::Detach { target, root } => detach(&target, &root.path()),
        KernelCommand::Maps(args) => maps(args),
        KernelCommand::Events { target, map, count, root } => events(&target, map.as_deref(), count, &root.path()),
        KernelCommand::TestRun { object, pcap, program, json, typed, pcap_out, repeat, maps_in, tail_calls } => {
            test_run(&TestRunArgs {
                path: &object,
                pcap: &pcap,
                program: program.as_deref(),
                json,
                typed,
                pcap_out: pcap_out.as_deref(),
                repeat,
                maps_in: maps_in.as_deref(),
                tail_calls: &tail_calls,
            })
        }
        KernelCommand::BenchKernel { object, pcap, program, repeat, json } => {
            bench(&object, &pcap, program.as_deref(), repeat, json)
        }
    }
}

/// The pin root: `$DUET_PIN_ROOT`, else /sys/fs/bpf/duet.
pub(crate) fn pin_root() -> PathBuf {
    std::env::var_os(PIN_ROOT_VAR).map_or_else(|| PathBuf::from(duet_kernel::DEFAULT_PIN_ROOT), PathBuf::from)
}

/// duet's own explanation of why a program is unsafe, shown next to the kernel verifier's log
/// when the kernel rejects it: duet's verifier's diagnostics, with source lines and the usual
/// fix. `None` when duet cannot parse the object, does not verify that program type, or (a
/// disagreement worth a bug report) accepts what the kernel rejected.
pub(crate) fn explain_rejection(object: &[u8], program: &str) -> Option<String> {
    let object = duet_object::Object::parse(object).ok()?;
    match duet_verifier::verify_object_program(&object, Some(program)) {
        Err(duet_verifier::VerifyError::Rejected { rejection, .. }) => Some(rejection.to_string()),
        Ok(_) => Some(
            "duet's verifier accepts this program; the kernel's rejection above is the authority (please report the difference)"
                .to_owned(),
        ),
        Err(_) => None,
    }
}

/// Turns a kernel error into the CLI's error, adding duet's explanation to a verifier rejection.
fn kernel_error(err: KernelError, object: &[u8], context: String) -> anyhow::Error {
    if let KernelError::Rejected { program, .. } = &err
        && let Some(explanation) = explain_rejection(object, program)
    {
        let program = program.clone();
        return anyhow::anyhow!("{err}\n\nduet's verifier on `{program}`:\n{explanation}").context(context);
    }
    anyhow::Error::new(err).context(context)
}

/// Reads an object for the kernel, refusing ring-buffer sizes as `duet run` and `verify` do
/// (aya would round them up; see [`objects::check_ring_buffers`]).
fn read_object(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if let Ok(object) = duet_object::Object::parse(&bytes) {
        objects::check_ring_buffers(&object).with_context(|| format!("cannot load {}", path.display()))?;
    }
    Ok(bytes)
}

/// Fails fast, before any other work, when this process may not use BPF.
fn require_access() -> Result<()> {
    duet_kernel::check_access().context("the kernel commands need BPF access")
}

// === load ===

fn load(path: &Path, json: bool) -> Result<ExitCode> {
    let object = read_object(path)?;
    // Program by program: one the kernel rejects is reported for itself, the others still load.
    let result = duet_kernel::load_each(&object)
        .map_err(|err| kernel_error(err, &object, format!("the kernel did not load {}", path.display())));
    let all_loaded = |programs: &[duet_kernel::LoadedProgram]| programs.iter().all(|p| p.rejected.is_none());
    if json {
        let doc = match result {
            Ok(programs) => serde_json::json!({
                "object": path.display().to_string(),
                "ok": all_loaded(&programs),
                "programs": programs.iter().map(|p| {
                    let mut entry = serde_json::json!({
                        "name": p.name, "type": p.kind.to_string(), "skipped": p.skipped,
                        "verified_insns": p.verified_insns, "jited_bytes": p.jited_bytes,
                    });
                    if let Some(why) = &p.rejected {
                        entry["rejected"] = why.clone().into();
                        entry["duet_verifier"] = explain_rejection(&object, &p.name).into();
                    }
                    entry
                }).collect::<Vec<_>>(),
            }),
            Err(e) => {
                serde_json::json!({ "object": path.display().to_string(), "ok": false, "error": format!("{e:#}") })
            }
        };
        println!("{doc}");
        return Ok(if doc["ok"] == true { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }
    let programs = result?;
    let ok = all_loaded(&programs);
    if ok {
        println!("{}: the kernel verifier accepted every program", path.display());
    } else {
        let rejected = programs.iter().filter(|p| p.rejected.is_some()).count();
        println!("{}: the kernel verifier rejected {rejected} of {} programs", path.display(), programs.len());
    }
    println!("  {:<28} {:<20} {:>14} {:>10}", "program", "type", "verified insns", "jit bytes");
    for p in &programs {
        match (&p.skipped, &p.rejected) {
            (Some(why), _) => println!("  {:<28} {:<20} skipped: {why}", p.name, p.kind),
            (None, Some(_)) => println!("  {:<28} {:<20} rejected (below)", p.name, p.kind),
            (None, None) => println!(
                "  {:<28} {:<20} {:>14} {:>10}",
                p.name,
                p.kind,
                p.verified_insns.map_or("-".to_owned(), |n| n.to_string()),
                p.jited_bytes
            ),
        }
    }
    // The rejections' logs go where errors go.
    for p in &programs {
        if let Some(why) = &p.rejected {
            eprintln!("error: {why}");
            if let Some(explanation) = explain_rejection(&object, &p.name) {
                eprintln!("\nduet's verifier on `{}`:\n{explanation}\n", p.name);
            }
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

// === attach / ps / detach ===

fn attach(args: AttachArgs) -> Result<ExitCode> {
    let hook = if let Some(interface) = args.xdp {
        Hook::Xdp { interface, mode: if args.skb { XdpMode::Skb } else { XdpMode::Native } }
    } else if let Some(interface) = args.tc {
        let direction = match args.direction {
            Some(Direction::Egress) => TcDirection::Egress,
            _ => TcDirection::Ingress,
        };
        Hook::Tc { interface, direction }
    } else if let Some(function) = args.kprobe {
        Hook::Kprobe { function }
    } else if let Some(tp) = args.tracepoint {
        let Some((category, name)) = tp.split_once('/') else {
            bail!(
                "--tracepoint takes <category>/<name>, e.g. sock/inet_sock_set_state (see /sys/kernel/tracing/events)"
            );
        };
        Hook::Tracepoint { category: category.to_owned(), name: name.to_owned() }
    } else if let Some(netns) = args.sk_lookup {
        Hook::SkLookup { netns }
    } else if let Some(cgroup) = args.cgroup {
        if args.connect4 {
            Hook::CgroupConnect4 { cgroup }
        } else if args.connect6 {
            Hook::CgroupConnect6 { cgroup }
        } else if args.sock_ops {
            Hook::SockOps { cgroup }
        } else {
            bail!("--cgroup needs --connect4, --connect6 or --sock-ops to say which hook");
        }
    } else {
        bail!("choose a hook: --xdp, --tc, --kprobe, --tracepoint, --cgroup or --sk-lookup");
    };
    if args.netns.is_some() && !matches!(hook, Hook::Xdp { .. } | Hook::Tc { .. }) {
        bail!("--netns applies to --xdp and --tc interfaces only");
    }
    let object = read_object(&args.object)?;
    let root = args.root.path();
    let object_path = std::fs::canonicalize(&args.object).unwrap_or_else(|_| args.object.clone());
    let attachment = duet_kernel::attach(&AttachRequest {
        object: &object,
        object_path: Some(&object_path),
        program: args.program.as_deref(),
        hook: hook.clone(),
        netns: args.netns.as_deref(),
        pin_root: &root,
    })
    .map_err(|err| kernel_error(err, &object, format!("cannot attach {} to {hook}", args.object.display())))?;
    let program = attachment.metadata.as_ref().map_or("?", |m| m.program.as_str());
    eprintln!("attached {program} to {hook}, pinned at {}", attachment.dir.display());
    println!("{}", attachment.id);
    Ok(ExitCode::SUCCESS)
}

fn ps(json: bool, root: &Path) -> Result<ExitCode> {
    let attachments = duet_kernel::list(root)?;
    let stats_on = duet_kernel::bpf_stats_enabled() == Some(true);
    if json {
        let rows: Vec<Json> = attachments.iter().map(attachment_json).collect();
        println!("{}", serde_json::to_string(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if attachments.is_empty() {
        println!("nothing attached (under {})", root.display());
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<4} {:<24} {:<16} {:<28} {:<20} {:>10} {:>10}",
        "ID", "PROGRAM", "HOOK", "TARGET", "SINCE (UTC)", "RUNS", "AVG NS"
    );
    for a in &attachments {
        let (program, hook, target, since) = match &a.metadata {
            Ok(m) => {
                let target = match &m.netns {
                    Some(ns) => format!("{} (netns {ns})", m.hook.target()),
                    None => m.hook.target(),
                };
                (m.program.clone(), m.hook.kind(), target, utc(m.attached_at))
            }
            Err(why) => ("?".to_owned(), "?".to_owned(), why.clone(), "?".to_owned()),
        };
        let hook = if a.attached { hook } else { format!("{hook} (detached)") };
        let target = match &a.defunct {
            Some(why) => format!("{target} [defunct: {why}]"),
            None => target,
        };
        let (runs, avg) = match a.stats {
            Some(s) if s.run_count > 0 => {
                (s.run_count.to_string(), format!("{:.1}", s.run_time_ns as f64 / s.run_count as f64))
            }
            Some(s) => (s.run_count.to_string(), "-".to_owned()),
            None => ("-".to_owned(), "-".to_owned()),
        };
        println!("{:<4} {program:<24} {hook:<16} {target:<28} {since:<20} {runs:>10} {avg:>10}", a.id);
    }
    if !stats_on {
        println!("run counts and times are off; enable them with: sysctl -w kernel.bpf_stats_enabled=1");
    }
    Ok(ExitCode::SUCCESS)
}

fn attachment_json(a: &Attachment) -> Json {
    let mut row = JsonMap::new();
    row.insert("id".into(), json!(a.id));
    row.insert("dir".into(), json!(a.dir.display().to_string()));
    row.insert("attached".into(), json!(a.attached));
    row.insert("defunct".into(), json!(a.defunct));
    match &a.metadata {
        Ok(m) => {
            row.insert("program".into(), json!(m.program));
            row.insert("program_type".into(), json!(m.program_type));
            row.insert("hook".into(), json!(m.hook.kind()));
            row.insert("target".into(), json!(m.hook.target()));
            row.insert("netns".into(), json!(m.netns));
            row.insert("object".into(), json!(m.object));
            row.insert("attached_at".into(), json!(m.attached_at));
            row.insert("kernel_program_id".into(), json!(m.kernel_program_id));
            row.insert("kernel_link_id".into(), json!(m.kernel_link_id));
            row.insert("maps".into(), json!(m.maps));
        }
        Err(why) => {
            row.insert("error".into(), json!(why));
        }
    }
    if let Some(s) = a.stats {
        row.insert("run_count".into(), json!(s.run_count));
        row.insert("run_time_ns".into(), json!(s.run_time_ns));
    }
    Json::Object(row)
}

fn detach(target: &str, root: &Path) -> Result<ExitCode> {
    let attachments = if target == "all" { duet_kernel::list(root)? } else { vec![duet_kernel::find(root, target)?] };
    let leftovers = duet_kernel::clean_leftovers(root)?;
    if leftovers > 0 {
        println!("removed {leftovers} unfinished attachment(s) left by killed `duet attach` processes");
    }
    if attachments.is_empty() {
        println!("nothing attached (under {})", root.display());
    }
    for a in attachments {
        duet_kernel::detach(&a).with_context(|| format!("cannot detach {}", a.id))?;
        match &a.metadata {
            Ok(m) => println!("detached {} ({} from {})", a.id, m.program, m.hook),
            Err(_) => println!("removed {} (its metadata was unreadable)", a.id),
        }
    }
    Ok(ExitCode::SUCCESS)
}

// === maps / events ===

fn maps(args: MapsArgs) -> Result<ExitCode> {
    let root = args.root.path();
    match args.action {
        Some(MapsAction::Set { target, map, key, values, typed }) => {
            let maps = PinnedMaps::open(&root, &target)?;
            let (key, values) = if typed {
                let types = pinned_types(&maps);
                let (key_type, value_type) = (types.key(&map), types.value(&map));
                if key_type.is_none() && value_type.is_none() {
                    maps.map_kind(&map)?;
                    bail!(
                        "map `{map}` of {target} has no recorded key and value types (`duet attach` records them \
                         from the object's BTF; this attachment has none, or the map was opened by path): give \
                         the key and value as hex, without --typed"
                    );
                }
                let key =
                    objects::seed_bytes(&typed_arg(&key), key_type, "key").with_context(|| format!("key `{key}`"))?;
                let values = values
                    .iter()
                    .map(|v| {
                        objects::seed_bytes(&typed_arg(v), value_type, "value").with_context(|| format!("value `{v}`"))
                    })
                    .collect::<Result<Vec<_>>>()?;
                (key, values)
            } else {
                let key = unhex(&key).with_context(|| format!("key `{key}`"))?;
                let values = values
                    .iter()
                    .map(|v| unhex(v).with_context(|| format!("value `{v}`")))
                    .collect::<Result<Vec<_>>>()?;
                (key, values)
            };
            maps.set(&map, &key, &values)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(MapsAction::Delete { target, map, key }) => {
            let maps = PinnedMaps::open(&root, &target)?;
            let key = unhex(&key).with_context(|| format!("key `{key}`"))?;
            maps.delete(&map, &key)?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let Some(target) = args.target else {
                bail!("name an attachment: `duet maps <id>` (ids from `duet ps`), or a pinned map path");
            };
            let maps = PinnedMaps::open(&root, &target)?;
            let dumped = maps.dump()?;
            let dump = in_map_order(&dumped, &maps.names());
            let types = if args.typed { pinned_types(&maps) } else { objects::MapTypes::default() };
            let mut out = std::io::stdout().lock();
            if args.json && args.typed {
                let typed = typed_maps_json(&dump, &types);
                writeln!(out, "{{\"maps\":{},\"maps_typed\":{typed}}}", maps_json(&dump))?;
            } else if args.json {
                writeln!(out, "{}", maps_json(&dump))?;
            } else {
                print_maps(&mut out, &dump, &types)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The types `duet attach` recorded for an attachment's maps.
fn pinned_types(maps: &PinnedMaps) -> objects::MapTypes {
    objects::MapTypes::from_layouts(
        maps.types().iter().map(|(name, layouts)| {
            (name.clone(), layouts.key.clone().map(Arc::new), layouts.value.clone().map(Arc::new))
        }),
    )
}

/// A `duet maps set --typed` argument as JSON: the text parsed as JSON, or, when it is not
/// JSON (`ALLOW`, `10.0.0.1`), the text as a JSON string.
fn typed_arg(text: &str) -> Json {
    serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.to_owned()))
}

/// The maps as text, one line per entry; a map with types shows them as typed JSON.
fn print_maps(out: &mut impl Write, dump: &[(&str, &MapEntries)], types: &objects::MapTypes) -> std::io::Result<()> {
    let typed = typed_maps_json(dump, types);
    for &(name, entries) in dump {
        writeln!(out, "{name}: {} entries", entries.len())?;
        if let Some(typed) = typed.get(name).and_then(Json::as_array) {
            for entry in typed {
                match (entry.get("value"), entry.get("values")) {
                    (Some(value), _) => writeln!(out, "  {} => {value}", entry["key"])?,
                    (None, Some(values)) => writeln!(out, "  {} => {values}", entry["key"])?,
                    (None, None) => {}
                }
            }
            continue;
        }
        for (key, value) in entries.iter() {
            match value {
                MapDump::Single(v) => writeln!(out, "  {} => {}", hex(key), hex(v))?,
                MapDump::PerCpu(vs) => {
                    let values: Vec<String> = vs.iter().map(|v| hex(v)).collect();
                    writeln!(out, "  {} => [{}]", hex(key), values.join(", "))?;
                }
            }
        }
    }
    Ok(())
}

fn events(target: &str, map: Option<&str>, count: Option<u64>, root: &Path) -> Result<ExitCode> {
    let attachment_dir = duet_kernel::find(root, target).ok().map(|a| a.dir);
    let mut reader = PinnedMaps::open(root, target)?.events(map)?;
    let name = reader.name().to_owned();
    let kind = if reader.is_perf() { "perf event array" } else { "ring buffer" };
    eprintln!("streaming {kind} `{name}` of {target}; Ctrl-C stops");
    let mut seen = 0u64;
    let mut out = std::io::stdout().lock();
    while count.is_none_or(|n| seen < n) {
        let records = reader.next_batch(Duration::from_millis(250))?;
        let ts_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        for record in records {
            let line = json!({ "map": name, "ts_ns": ts_ns as u64, "len": record.len(), "data": hex(&record) });
            writeln!(out, "{line}")?;
            seen += 1;
            if count.is_some_and(|n| seen >= n) {
                break;
            }
        }
        out.flush()?;
        if attachment_dir.as_ref().is_some_and(|dir| !dir.exists()) {
            eprintln!("attachment {target} was detached; stopping");
            break;
        }
    }
    if reader.lost() > 0 {
        eprintln!("the kernel dropped {} samples of `{name}`: a CPU's perf buffer was full", reader.lost());
    }
    Ok(ExitCode::SUCCESS)
}

// === test-run / bench-kernel ===

/// The program to test-run: the one named, or the object's only test-runnable program.
fn pick_test_program(object: &[u8], path: &Path, program: Option<&str>) -> Result<String> {
    if let Some(name) = program {
        return Ok(name.to_owned());
    }
    let programs = duet_kernel::list_programs(object)
        .with_context(|| format!("cannot choose a program of {} to run in the kernel", path.display()))?;
    let runnable: Vec<_> = programs.iter().filter(|p| p.kind.test_runnable()).collect();
    match runnable.as_slice() {
        [only] => Ok(only.name.clone()),
        [] => bail!("{} has no program BPF_PROG_TEST_RUN can run on packets (xdp, socket, classifier)", path.display()),
        many => bail!(
            "{} has several programs that can test-run; choose one with --program: {}",
            path.display(),
            many.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Options of `duet test-run`.
struct TestRunArgs<'a> {
    path: &'a Path,
    pcap: &'a Path,
    program: Option<&'a str>,
    json: bool,
    typed: bool,
    pcap_out: Option<&'a Path>,
    repeat: u32,
    maps_in: Option<&'a Path>,
    tail_calls: &'a [objects::TailCall],
}

/// `duet test-run`: the capture is read, run and reported one frame at a time (the per-packet
/// JSON arrays spooled to unlinked temporary files, as `duet run` does), so memory stays flat
/// whatever the capture's size.
fn test_run(args: &TestRunArgs<'_>) -> Result<ExitCode> {
    let (path, pcap) = (args.path, args.pcap);
    let object = read_object(path)?;
    let name = pick_test_program(&object, path, args.program)?;
    let kind = duet_kernel::list_programs(&object)?.into_iter().find(|p| p.name == name).map(|p| p.kind);
    // Programs duet-object refuses are left out of the kernel's copy too; the others' maps stay.
    let parsed = duet_object::Object::parse_each(&object).ok().map(|p| p.object);
    let types = parsed.as_ref().map(objects::MapTypes::of).unwrap_or_default();
    // Maps are listed in duet-object's order, as `duet run` lists them.
    let order: Vec<String> = parsed.map(|o| o.maps.into_iter().map(|m| m.name).collect()).unwrap_or_default();
    let mut capture = Capture::open(pcap)?;
    let cannot = || format!("cannot test-run `{name}` of {}", path.display());
    let prog_arrays: Vec<(String, u32, String)> =
        args.tail_calls.iter().map(|t| (t.map.clone(), t.slot, t.program.clone())).collect();
    let config =
        TestRunConfig { object: &object, program: &name, prog_arrays: &prog_arrays, repeat: args.repeat.max(1) };
    let mut runner = TestRunner::load(&config).map_err(|err| kernel_error(err, &object, cannot()))?;
    if let Some(file) = args.maps_in {
        let shape = |map: &str| {
            runner.map_kind(map).map(|kind| objects::SeedShape {
                map_type: kind.name.to_owned(),
                per_cpu: kind.per_cpu,
                n_cpus: runner.n_cpus(),
            })
        };
        for mut seed in objects::read_seeds(file, &types, shape)? {
            // A shorter per-CPU list leaves the other CPUs the first value, as in `duet run`.
            if let Some(first) = seed.values.first().filter(|_| seed.values.len() > 1).cloned() {
                seed.values.resize(runner.n_cpus().max(seed.values.len()), first);
            }
            runner
                .seed(&seed.map, &seed.key, &seed.values)
                .with_context(|| format!("map `{}`: cannot set key {}", seed.map, seed.at))?;
        }
    }

    let is_xdp = kind == Some(duet_kernel::ProgramKind::Xdp);
    let label = |result: &Result<u32, String>| match result {
        Err(why) => format!("refused ({why})"),
        Ok(r0) if is_xdp => objects::xdp_action_name(u64::from(*r0)),
        Ok(r0) => format!("r0 = {r0}"),
    };
    let mut pcap_out = args.pcap_out.map(CaptureWriter::create).transpose()?;
    let mut json =
        if args.json { Some((Spool::new("test-run-results")?, Spool::new("test-run-packets")?)) } else { None };
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut n_packets = 0usize;
    while let Some(frame) = capture.next_frame() {
        let frame = frame?;
        let outcome = runner.run(frame.data).map_err(|err| kernel_error(err, &object, cannot()))?;
        let verdict = label(&outcome.result);
        if let Some((results, packets)) = &mut json {
            match &outcome.result {
                Ok(r0) => {
                    results.push(r0)?;
                    packets.push(format_args!("\"{}\"", hex(&outcome.data_out)))?;
                }
                Err(_) => {
                    results.push("null")?;
                    packets.push("null")?;
                }
            }
        }
        if let Some(writer) = &mut pcap_out {
            // A refused packet is written as it came.
            let data = if outcome.result.is_ok() { &outcome.data_out[..] } else { frame.data };
            writer.write(data, frame.timestamp, &verdict)?;
        }
        *counts.entry(verdict).or_default() += 1;
        n_packets += 1;
    }
    let (maps, ringbufs) = runner.finish().map_err(|err| kernel_error(err, &object, cannot()))?;
    let (maps, ringbufs) = (in_map_order(&maps, &order), in_map_order(&ringbufs, &order));
    if let Some(writer) = pcap_out {
        writer.finish()?;
    }

    let mut out = std::io::stdout().lock();
    if let Some((results, packets)) = json {
        let ringbufs: JsonMap<String, Json> = ringbufs
            .iter()
            .map(|&(name, records)| (name.to_owned(), records.iter().map(|r| json!(hex(r))).collect()))
            .collect();
        out.write_all(b"{\"results\":[")?;
        results.copy_to(&mut out)?;
        out.write_all(b"],\"packets\":[")?;
        packets.copy_to(&mut out)?;
        write!(out, "],\"ringbufs\":{},\"maps\":{}", Json::Object(ringbufs), maps_json(&maps))?;
        // Typed views when asked, only where the object's BTF declares types, beside the hex.
        let typed = if args.typed { typed_maps_json(&maps, &types) } else { Json::Null };
        if typed.as_object().is_some_and(|t| !t.is_empty()) {
            write!(out, ",\"maps_typed\":{typed}")?;
        }
        writeln!(out, "}}")?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let kind = kind.map_or_else(|| "?".to_owned(), |k| k.to_string());
    writeln!(out, "{name} ({kind}) over {n_packets} packets from {} in the kernel:", pcap.display())?;
    for (label, n) in &counts {
        writeln!(out, "  {label:<24} {n:>8}")?;
    }
    for (ring, records) in ringbufs {
        writeln!(out, "  ring buffer `{ring}`: {} records", records.len())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn bench(path: &Path, pcap: &Path, program: Option<&str>, repeat: Option<u32>, json: bool) -> Result<ExitCode> {
    let object = read_object(path)?;
    let name = pick_test_program(&object, path, program)?;
    let packets = objects::read_capture(pcap)?;
    let out = duet_kernel::bench(&TestRunInput {
        object: &object,
        program: &name,
        packets: &packets,
        maps_in: &[],
        prog_arrays: &[],
        repeat: repeat.unwrap_or(0),
    })
    .map_err(|err| kernel_error(err, &object, format!("cannot benchmark `{name}` of {}", path.display())))?;
    if out.packets == 0 {
        bail!("the kernel refused every frame of {} (frames shorter than 14 bytes cannot test-run)", pcap.display());
    }
    if json {
        let doc = json!({
            "program": name,
            "engine": "kernel",
            "ns_per_packet": out.ns_per_packet,
            "min_ns": out.min_ns,
            "max_ns": out.max_ns,
            "packets": out.packets,
            "refused": out.refused,
            "repeat": out.repeat,
        });
        println!("{}", serde_json::to_string(&doc)?);
    } else {
        println!(
            "{name}: {:.1} ns/packet in the kernel (BPF_PROG_TEST_RUN, {} packets x {} repetitions; \
             per packet {}..{} ns{})",
            out.ns_per_packet,
            out.packets,
            out.repeat,
            out.min_ns,
            out.max_ns,
            if out.refused > 0 { format!("; {} frames refused", out.refused) } else { String::new() }
        );
    }
    Ok(ExitCode::SUCCESS)
}

// === JSON and hex ===

/// `maps_typed` of maps read from the kernel: the typed view `duet run` prints
/// ([`objects::typed_view`]) of every map `types` describes.
fn typed_maps_json(maps: &[(&str, &MapEntries)], types: &objects::MapTypes) -> Json {
    let entries = |entries: &MapEntries| -> Vec<(Vec<u8>, MapValue)> {
        entries
            .iter()
            .map(|(key, value)| {
                let value = match value {
                    MapDump::Single(v) => MapValue::Single(v.clone()),
                    MapDump::PerCpu(vs) => MapValue::PerCpu(vs.clone()),
                };
                (key.clone(), value)
            })
            .collect()
    };
    objects::typed_view(maps.iter().map(|&(name, e)| (name, entries(e))), types)
}

/// The maps of `maps` in `order` (an object's map order: declaration order for SDK objects),
/// then any others by name, so every document lists maps as `duet run` does.
pub(crate) fn in_map_order<'a, V>(maps: &'a BTreeMap<String, V>, order: &[String]) -> Vec<(&'a str, &'a V)> {
    let mut out: Vec<(&str, &V)> = maps.iter().map(|(name, v)| (name.as_str(), v)).collect();
    out.sort_by_key(|&(name, _)| (order.iter().position(|o| o == name).unwrap_or(usize::MAX), name));
    out
}

/// Map contents in the JSON shape of `duet run --json`'s "maps": maps in the order given,
/// entries by key bytes.
pub(crate) fn maps_json(maps: &[(&str, &MapEntries)]) -> Json {
    let mut out = JsonMap::new();
    for &(name, entries) in maps {
        let mut entries: Vec<_> = entries.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let entries: JsonMap<String, Json> = entries
            .into_iter()
            .map(|(key, value)| {
                let value = match value {
                    MapDump::Single(v) => json!(hex(v)),
                    MapDump::PerCpu(vs) => json!(vs.iter().map(|v| hex(v)).collect::<Vec<_>>()),
                };
                (hex(key), value)
            })
            .collect();
        out.insert(name.to_owned(), Json::Object(entries));
    }
    Json::Object(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Result<Vec<u8>> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    duet_testdata::parse_hex_bytes(text).map_err(anyhow::Error::msg)
}

/// `YYYY-MM-DD HH:MM:SS` in UTC for seconds since the Unix epoch.
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20");
    }

    #[test]
    fn maps_json_has_the_run_shape() {
        let mut maps = BTreeMap::new();
        maps.insert(
            "m".to_owned(),
            vec![
                (vec![1, 0, 0, 0], MapDump::Single(vec![0xab])),
                (vec![2, 0, 0, 0], MapDump::PerCpu(vec![vec![1], vec![2]])),
            ],
        );
        assert_eq!(
            maps_json(&in_map_order(&maps, &[])).to_string(),
            r#"{"m":{"01000000":"ab","02000000":["01","02"]}}"#
        );
    }

    #[test]
    fn maps_are_listed_in_the_order_given_then_by_name() {
        let maps: BTreeMap<String, MapEntries> = ["A", "B", "C", "D"]
            .into_iter()
            .map(|n| (n.to_owned(), vec![(vec![1], MapDump::Single(vec![2]))]))
            .collect();
        let order = ["C".to_owned(), "A".to_owned()];
        let names: Vec<&str> = in_map_order(&maps, &order).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["C", "A", "B", "D"]);
        assert_eq!(
            maps_json(&in_map_order(&maps, &order)).to_string(),
            r#"{"C":{"01":"02"},"A":{"01":"02"},"B":{"01":"02"},"D":{"01":"02"}}"#
        );
    }
}
