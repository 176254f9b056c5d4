//! Memory: loads, stores and atomics through each kind of pointer (context fields per program
//! type, packet data within a proven range, stack slots and spills, map values and ring buffer
//! records within their size), `lddw` of constants and map references, and legacy packet loads.

use duet_isa::{Form, Insn, Op, PseudoSrc};

use super::{Access, Checker, atomic_fetches};
use crate::diag::{Code, Diagnostic};
use crate::helpers;
use crate::scalar::Scalar;
use crate::state::{ByteKind, MAX_STACK, MAX_VAR_OFF, Reg, RegType, Slot, State};
use crate::{HTTP_MD_FIELDS, MemRegion, ProgramType};

/// Size of `struct pt_regs` on x86-64, the kprobe context.
const PT_REGS_SIZE: i64 = 168;
/// The kernel's `PERF_MAX_TRACE_SIZE`: tracepoint programs read their record below it.
const TRACE_RECORD_MAX: i64 = 8192;
/// `MAX_BPF_FUNC_ARGS` u64s: the raw tracepoint context (`struct bpf_raw_tracepoint_args`).
const RAW_TP_ARGS_SIZE: i64 = 12 * 8;
/// `struct bpf_perf_event_data` on x86-64: `pt_regs`, then `sample_period` and `addr`.
const PERF_EVENT_DATA_SIZE: i64 = PT_REGS_SIZE + 16;

impl Checker<'_> {
    pub(super) fn ld_imm64(&mut self, st: &mut State, pc: usize, insn: &Insn) {
        let dst = insn.dst;
        let index = insn.imm as u32;
        let unbound = self.ctx.unbound_map_loads.iter().find(|(slot, _)| *slot == pc).map(|(_, fd)| *fd);
        let loaded = match insn.pseudo_src() {
            Some(PseudoSrc::Imm64) | None => Ok(Reg::scalar(Scalar::constant(insn.imm as u64))),
            Some(_) if let Some(fd) = unbound => {
                let d = Diagnostic::new(
                    Code::BadMap,
                    Some(pc),
                    format!(
                        "the lddw names map fd {fd} directly, with no relocation to a map of the object: fd {fd} is not pointing to valid bpf_map"
                    ),
                )
                .help("refer to the map by its symbol (`&my_map` in C) so that the compiler emits a relocation and the loader binds the load to that map; a file descriptor written into the bytecode names no map of the object");
                Err(d)
            }
            Some(PseudoSrc::MapFd | PseudoSrc::MapIdx) => {
                if (index as usize) < self.program_maps {
                    Ok(Reg::pointer(RegType::MapHandle { map: index }))
                } else {
                    Err(self.bad_map_ref(pc, index))
                }
            }
            Some(PseudoSrc::MapValue | PseudoSrc::MapIdxValue) => {
                let off = (insn.imm as u64 >> 32) as u32;
                match self.maps[..self.program_maps].get(index as usize) {
                    None => Err(self.bad_map_ref(pc, index)),
                    Some(info)
                        if info.max_entries != 1
                            || info.map_type != helpers::map_type::ARRAY
                            || off >= info.value_size =>
                    {
                        let d = Diagnostic::new(
                            Code::BadMap,
                            Some(pc),
                            format!("direct value address of map `{}` at offset {off} is not available", info.name),
                        )
                        .help(
                            "only single-entry array maps (global data) can be addressed directly, within their value",
                        );
                        Err(d)
                    }
                    Some(_) => Ok(Reg { off: off as i32, ..Reg::pointer(RegType::MapValue { map: index }) }),
                }
            }
            Some(PseudoSrc::Func) => {
                let target = usize::try_from(crate::cfg::func_target(pc, insn)).ok();
                match target.and_then(|t| self.cfg.subprog_at(t)) {
                    Some(subprog) => Ok(Reg::pointer(RegType::Func { subprog: subprog as u32 })),
                    // The static pass made every function target a subprogram entry.
                    None => {
                        let d = Diagnostic::new(
                            Code::BadControlFlow,
                            Some(pc),
                            "the loaded function is not a function of the program",
                        );
                        Err(d)
                    }
                }
            }
            Some(other) => {
                let d = Diagnostic::new(
                    Code::Unsupported,
                    Some(pc),
                    format!("lddw of a {other:?} reference is not supported by duet"),
                )
                .help("duet supports map references (map_fd, map_value), functions for bpf_loop and 64-bit constants; BTF ids are not available");
                Err(d)
            }
        };
        match loaded {
            Ok(reg) => *st.reg_mut(dst) = reg,
            Err(d) => self.fail_unknown(st, pc, &[], dst, d),
        }
    }

    /// The diagnostic for a reference to map `index`, which the program does not have.
    fn bad_map_ref(&self, pc: usize, index: u32) -> Diagnostic {
        let n = self.program_maps;
        Diagnostic::new(
            Code::BadMap,
            Some(pc),
            format!("the instruction refers to map {index}, but the program has {n} map(s)"),
        )
        .help("map references must come from the object's relocations (duet-object resolves them); check that the map is defined in the same object")
    }

    pub(super) fn ld_abs(&mut self, st: &mut State, pc: usize, insn: &Insn) {
        if !matches!(self.ctx.program_type, ProgramType::SocketFilter | ProgramType::SchedCls) {
            let d = Diagnostic::new(
                Code::Unsupported,
                Some(pc),
                format!(
                    "legacy packet loads (ldabs/ldind) are not allowed in {} programs",
                    self.ctx.program_type.name()
                ),
            )
            .help("read the packet through ctx->data after checking the bounds against ctx->data_end");
            self.fail(st, pc, &[], d);
        } else if self.cfg.has_local_calls {
            let d = Diagnostic::new(
                Code::Unsupported,
                Some(pc),
                "legacy packet loads (ldabs/ldind) cannot be mixed with bpf-to-bpf calls",
            )
            .help("inline the functions (`static __always_inline`) or use bpf_skb_load_bytes");
            self.fail(st, pc, &[], d);
        }
        let r6 = self.read(st, pc, 6);
        if r6.ty != RegType::Ctx || r6.off != 0 {
            let d = Diagnostic::new(
                Code::HelperArgs,
                Some(pc),
                format!("legacy packet loads need the context pointer in R6, found {r6}"),
            )
            .help("copy r1 to r6 at the start of the program (`r6 = r1`) and keep it there");
            self.fail(st, pc, &[6], d);
        }
        if insn.op.form() == Form::LdInd {
            let src = self.read(st, pc, insn.src);
            if src.ty.is_pointer() {
                let d = Diagnostic::new(
                    Code::PointerLeak,
                    Some(pc),
                    format!("the offset register R{} of a legacy packet load is {}", insn.src, src.ty.describe()),
                );
                self.fail(st, pc, &[insn.src], d);
            }
        }
        if let Some(held) = st.refs.first().copied() {
            let d = Diagnostic::new(
                Code::ReferenceLeak,
                Some(pc),
                format!(
                    "a legacy packet load can end the program while a reference is held ({})",
                    self.held_ref(&held)
                ),
            )
            .help("release every reference (submit or discard records, bpf_sk_release sockets) before ldabs/ldind");
            self.fail(st, pc, &[], d);
        }
        let bytes = match insn.op {
            Op::LdAbsB | Op::LdIndB => 1,
            Op::LdAbsH | Op::LdIndH => 2,
            _ => 4,
        };
        self.clobber_call(st, pc);
        *st.reg_mut(0) = Reg::scalar(Scalar::unknown_of_size(bytes));
    }

    // --- loads, stores and atomics ---

    pub(super) fn load(&mut self, st: &mut State, pc: usize, insn: &Insn) {
        let (size, signed) = match insn.op {
            Op::LdxB => (1, false),
            Op::LdxH => (2, false),
            Op::LdxW => (4, false),
            Op::LdxDw => (8, false),
            Op::LdxSB => (1, true),
            Op::LdxSH => (2, true),
            _ => (4, true),
        };
        let ptr = self.read(st, pc, insn.src);
        let val = self.access(st, pc, insn.src, &ptr, insn.off, size, Access::Read, None);
        let mut out = val.unwrap_or(Reg::scalar(Scalar::unknown_of_size(size)));
        // A sign-extending load yields a number; of a field that holds a pointer (a context's
        // `data`, `data_end`), the kernel has no such form and refuses it.
        if signed && out.ty.is_pointer() {
            let d = Diagnostic::new(
                Code::ContextAccess,
                Some(pc),
                format!(
                    "sign-extending {size}-byte load of {} from R{} at offset {}",
                    out.ty.describe(),
                    insn.src,
                    insn.off
                ),
            )
            .help("load the pointer with a plain `ldx` of its size");
            self.fail(st, pc, &[insn.src], d);
            out = Reg::scalar(Scalar::unknown_of_size(size));
        }
        if signed && out.is_scalar() {
            out.val = out.val.sign_extend(size, false);
            out.id = 0;
        }
        *st.reg_mut(insn.dst) = out;
    }

    pub(super) fn store(&mut self, st: &mut State, pc: usize, insn: &Insn) {
        let size = match insn.op {
            Op::StB | Op::StxB => 1,
            Op::StH | Op::StxH => 2,
            Op::StW | Op::StxW => 4,
            _ => 8,
        };
        let value = if insn.op.form() == Form::St {
            Reg::scalar(Scalar::constant(insn.imm as u64))
        } else {
            self.read(st, pc, insn.src)
        };
        let ptr = self.read(st, pc, insn.dst);
        self.access(st, pc, insn.dst, &ptr, insn.off, size, Access::Write, Some(value));
    }

    pub(super) fn atomic(&mut self, st: &mut State, pc: usize, insn: &Insn) {
        let size = if insn.op.spec().code == 0xc3 { 4 } else { 8 };
        let src = self.read(st, pc, insn.src);
        if src.ty.is_pointer() && !self.allow_ptr_leaks() {
            let d = Diagnostic::new(
                Code::PointerLeak,
                Some(pc),
                format!("atomic operation with R{}, which is {}", insn.src, src.ty.describe()),
            )
            .help("atomic operations work on numbers; storing a pointer would reveal its address");
            self.fail(st, pc, &[insn.src], d);
        }
        let cmpxchg = matches!(insn.op, Op::AtomicCmpXchgW | Op::AtomicCmpXchgDw);
        if cmpxchg {
            let r0 = self.read(st, pc, 0);
            if r0.ty.is_pointer() && !self.allow_ptr_leaks() {
                let d = Diagnostic::new(Code::PointerLeak, Some(pc), "compare-and-exchange expects a number in R0");
                self.fail(st, pc, &[0], d);
            }
        }
        let ptr = self.read(st, pc, insn.dst);
        let total = i64::from(ptr.off) + i64::from(insn.off);
        if total.rem_euclid(i64::from(size)) != 0 || !ptr.val.var.is_aligned(u64::from(size)) {
            let d = Diagnostic::new(
                Code::InvalidPointer,
                Some(pc),
                format!("misaligned {size}-byte atomic operation at offset {total} of R{}", insn.dst),
            )
            .help(format!("atomic operations need {size}-byte aligned addresses"));
            self.fail(st, pc, &[insn.dst], d);
        }
        // The register the old value goes to (R0 for compare-and-exchange) must not be the
        // address register: the kernel checks the write half through the address register after
        // the read half has put the old value, a number, there, and refuses.
        let fetched_into = if cmpxchg { Some(0) } else { atomic_fetches(insn.op).then_some(insn.src) };
        if fetched_into == Some(insn.dst) {
            let d = Diagnostic::new(
                Code::InvalidPointer,
                Some(pc),
                format!("atomic operation fetches the old value into R{}, its own address register", insn.dst),
            )
            .help("the kernel's verifier checks the write through the address after the fetched value replaced it; fetch into another register");
            self.fail(st, pc, &[insn.dst], d);
        }
        match ptr.ty {
            RegType::Stack { .. } | RegType::MapValue { .. } | RegType::Record { .. } => {
                self.access(
                    st,
                    pc,
                    insn.dst,
                    &ptr,
                    insn.off,
                    size,
                    Access::Atomic,
                    Some(Reg::scalar(Scalar::unknown_of_size(size))),
                );
            }
            RegType::NotInit | RegType::Stale { .. } => {}
            RegType::MapValueOrNull { .. } | RegType::RecordOrNull { .. } | RegType::Scalar => {
                self.access(st, pc, insn.dst, &ptr, insn.off, size, Access::Atomic, None);
            }
            other => {
                let d = Diagnostic::new(
                    Code::InvalidPointer,
                    Some(pc),
                    format!("atomic operations are not allowed on {}", other.describe()),
                )
                .help("atomic operations work on the stack, map values and ring buffer records");
                self.fail(st, pc, &[insn.dst], d);
            }
        }
        let result = Reg::scalar(Scalar::unknown_of_size(size));
        if cmpxchg {
            *st.reg_mut(0) = result;
        } else if atomic_fetches(insn.op) {
            *st.reg_mut(insn.src) = result;
        }
    }

    /// Checks a load, store or atomic through `ptr` (register `r`) at `insn_off` of `size`
    /// bytes; returns the loaded value for reads.
    #[allow(clippy::too_many_arguments, reason = "mirrors the instruction's fields")]
    fn access(
        &mut self,
        st: &mut State,
        pc: usize,
        r: u8,
        ptr: &Reg,
        insn_off: i16,
        size: u32,
        kind: Access,
        value: Option<Reg>,
    ) -> Option<Reg> {
        if kind != Access::Read
            && let Some(v) = value
            && v.ty.is_pointer()
            && !matches!(ptr.ty, RegType::Stack { .. })
            && !self.allow_ptr_leaks()
        {
            let d = Diagnostic::new(
                Code::PointerLeak,
                Some(pc),
                format!("storing {} into {} would leak its address", v.ty.describe(), ptr.ty.describe()),
            )
            .help("only the stack may hold pointers; store numbers (or indices) in maps, packets and records");
            self.fail(st, pc, &[r], d);
        }
        match ptr.ty {
            RegType::Stack { .. } => self.stack_access(st, pc, r, ptr, insn_off, size, kind, value),
            RegType::Ctx => self.ctx_access(st, pc, r, ptr, insn_off, size, kind),
            RegType::Packet | RegType::PacketMeta => self.packet_access(st, pc, r, ptr, insn_off, size, kind),
            RegType::MapValue { map } => self.bounded_access(st, pc, r, ptr, insn_off, size, kind, Bounds::Map(map)),
            RegType::Record { size: rsize } => {
                self.bounded_access(st, pc, r, ptr, insn_off, size, kind, Bounds::Record(rsize))
            }
            RegType::Socket { common } => self.sock_access(st, pc, r, ptr, insn_off, size, kind, common),
            RegType::TcpSock => self.read_only_fields(
                st,
                pc,
                (r, ptr, insn_off, size, kind),
                "tcp_sock",
                tcp_sock_field_ok,
                "struct bpf_tcp_sock is read-only: whole 4-byte fields, bytes_received (80) and bytes_acked (88) as 8 bytes, offsets 0..112",
            ),
            RegType::XdpSock => self.read_only_fields(
                st,
                pc,
                (r, ptr, insn_off, size, kind),
                "xdp_sock",
                |off, size| off == 0 && size == 4,
                "an xskmap lookup yields the AF_XDP socket, of which programs may only read queue_id (4 bytes at offset 0)",
            ),
            RegType::MapValueOrNull { .. }
            | RegType::RecordOrNull { .. }
            | RegType::SocketOrNull { .. }
            | RegType::TcpSockOrNull => {
                let what = match ptr.ty {
                    RegType::MapValueOrNull { .. } => "bpf_map_lookup_elem returns NULL when the key is absent",
                    RegType::SocketOrNull { .. } => "the socket lookups return NULL when no socket matches",
                    RegType::TcpSockOrNull => "bpf_tcp_sock returns NULL for a socket that is not TCP",
                    _ => "bpf_ringbuf_reserve returns NULL when the ring buffer is full",
                };
                let d = Diagnostic::new(
                    Code::NullCheck,
                    Some(pc),
                    format!("{} through R{r}, which may be NULL ({})", kind.verb(), ptr.ty.name()),
                )
                .help(format!("{what}: check `if (!ptr) return ...;` before using the pointer"));
                self.fail_access(st, pc, r, d)
            }
            RegType::PacketEnd => {
                let d = Diagnostic::new(
                    Code::InvalidPointer,
                    Some(pc),
                    format!("{} through R{r}, which is data_end", kind.verb()),
                )
                .help("data_end marks the first byte after the packet; it may only be compared with packet pointers");
                self.fail_access(st, pc, r, d)
            }
            RegType::MapHandle { map } => self.map_handle_access(st, pc, (r, ptr, insn_off, size, kind), map),
            RegType::Scalar => {
                let extra = if ptr.val.is_const(0) { ", here NULL" } else { "" };
                let d = Diagnostic::new(
                    Code::InvalidPointer,
                    Some(pc),
                    format!("{} through R{r}, which is a number{extra} ({}), not a pointer", kind.verb(), ptr.val),
                )
                .help("memory can be accessed only through pointers the verifier knows: the context, the stack, packet data after a bounds check, map values and ring buffer records");
                self.fail_access(st, pc, r, d)
            }
            RegType::Func { .. } => {
                let d = Diagnostic::new(
                    Code::InvalidPointer,
                    Some(pc),
                    format!("{} through R{r}, which is a function pointer", kind.verb()),
                )
                .help("a function loaded with `lddw rX, func` may only be passed to a helper that calls it (bpf_loop)");
                self.fail_access(st, pc, r, d)
            }
            RegType::NotInit | RegType::Stale { .. } => None,
        }
    }

    /// A load through a socket pointer: the `struct bpf_sock` fields the kernel's
    /// `bpf_sock_is_valid_access` allows (for a `struct bpf_sock_common`, not `type`,
    /// `protocol`, `mark` or `priority`), each read yielding a number of the load's size.
    /// Sockets are never written.
    #[allow(clippy::too_many_arguments, reason = "mirrors the instruction's fields")]
    fn sock_access(
        &mut self,
        st: &State,
        pc: usize,
        r: u8,
        ptr: &Reg,
        insn_off: i16,
        size: u32,
        kind: Access,
        common: bool,
    ) -> Option<Reg> {
        // Socket loads are rewritten by the kernel into reads of the real socket: no region
        // duet's engines could access directly (they do not run the socket helpers anyway).
        self.facts[pc].mem = Some(MemRegion::Mixed);
        let what = if common { "struct bpf_sock_common" } else { "struct bpf_sock" };
        if kind != Access::Read {
            let d = Diagnostic::new(
                Code::SocketAccess,
                Some(pc),
                format!("{} through R{r}, a socket ({what}): programs cannot write into a socket", kind.verb()),
            )
            .help("socket fields are read-only; keep what you want to change in a map or on the stack");
            return self.fail_access(st, pc, r, d);
        }
        let off = ptr.val.as_const().map(|v| (i64::from(ptr.off) + i64::from(insn_off)).wrapping_add(v as i64));
        if !off.is_some_and(|off| sock_field_ok(common, off, size)) {
            let field = off.map(sock_field_name).unwrap_or("a variable offset");
            let d = Diagnostic::new(
                Code::SocketAccess,
                Some(pc),
                format!(
                    "invalid {what} access through R{r}: {size}-byte read at offset {} ({field})",
                    off.map_or_else(|| ptr.val.to_string(), |o| o.to_string())
                ),
            )
            .help("read whole 4-byte fields of struct bpf_sock (bound_dev_if, mark, priority only so), or aligned 1-, 2- or 4-byte parts of family, type, protocol, src_port, dst_port, state, rx_queue_mapping and the addresses; offsets 0..80, never 8 bytes at once; a struct bpf_sock_common has no type, protocol, mark or priority");
            return self.fail_access(st, pc, r, d);
        }
        Some(Reg::scalar(Scalar::unknown_of_size(size)))
    }

    /// An access through a map handle: a read of the map's kernel structure (`struct bpf_array`
    /// for arrays, `struct bpf_htab` for hashes, ..., each beginning with its `struct bpf_map`),
    /// as the kernel's `check_ptr_to_map_access` allows it: only for a privileged loader, only
    /// reads, at a non-negative offset, of a field the kernel's vmlinux BTF says is there. A
    /// number member (`max_entries`) reads as an unknown number of the load's size; a pointer
    /// member, which the kernel turns into a BTF-typed kernel pointer, duet does not support.
    fn map_handle_access(
        &mut self,
        st: &State,
        pc: usize,
        (r, ptr, insn_off, size, kind): (u8, &Reg, i16, u32, Access),
        map: u32,
    ) -> Option<Reg> {
        // The kernel's code reads the real map: nothing duet's engines could access directly.
        self.facts[pc].mem = Some(MemRegion::Mixed);
        let map_type = self.maps.get(map as usize).map_or(0, |m| m.map_type);
        let Some(sname) = crate::kernel_btf::map_struct_name(map_type) else {
            let d = Diagnostic::new(
                Code::Unsupported,
                Some(pc),
                format!(
                    "{} through R{r}, a map handle of a {} map, whose kernel structure duet does not know",
                    kind.verb(),
                    duet_object::map_type_name(map_type)
                ),
            )
            .help("call bpf_map_lookup_elem(map, &key) and check the result for NULL to get a value pointer");
            return self.fail_access(st, pc, r, d);
        };
        let refuse = |this: &mut Self, code: Code, msg: String, help: &str| {
            let d = Diagnostic::new(code, Some(pc), msg).help(help.to_owned());
            this.fail_access(st, pc, r, d)
        };
        if !self.allow_ptr_leaks() {
            return refuse(
                self,
                Code::InvalidPointer,
                format!(
                    "'struct {sname}' access through R{r}, a map handle, is allowed only to CAP_PERFMON and CAP_SYS_ADMIN"
                ),
                "reading a map's kernel structure (`map->max_entries`) needs a privileged loader; without one, pass the value in a map or a constant",
            );
        }
        if kind != Access::Read {
            return refuse(
                self,
                Code::ReadOnly,
                format!("{} through R{r}, a map handle: only read from {sname} is supported", kind.verb()),
                "a map's kernel structure may be read (`map->max_entries`), never written; to change the map's contents use bpf_map_update_elem",
            );
        }
        let off = ptr.val.as_const().map(|v| (i64::from(ptr.off) + i64::from(insn_off)).wrapping_add(v as i64));
        let Some(off) = off.and_then(|o| u32::try_from(o).ok()) else {
            return refuse(
                self,
                Code::InvalidPointer,
                format!(
                    "R{r} is {sname} invalid negative access: off={}",
                    off.map_or_else(|| ptr.val.to_string(), |o| o.to_string())
                ),
                "read fields of the map's structure at their offsets from its start",
            );
        };
        let btf = match self.ctx.config.kernel_types.get() {
            Ok(btf) => btf,
            Err(why) => {
                return refuse(
                    self,
                    Code::Unsupported,
                    format!("reading struct {sname} through R{r} needs the kernel's BTF, which is not readable: {why}"),
                    "the kernel checks these reads against its own types (vmlinux BTF, CONFIG_DEBUG_INFO_BTF); verify where /sys/kernel/btf/vmlinux is readable, or give the verifier the kernel's BTF (Config::kernel_types)",
                );
            }
        };
        let Some(id) = btf.struct_id(sname) else {
            return refuse(
                self,
                Code::Unsupported,
                format!(
                    "the kernel's BTF has no struct {sname}, which a {} map's handle points to",
                    duet_object::map_type_name(map_type)
                ),
                "the kernel checks these reads against its own types; this kernel's BTF lacks the map's structure",
            );
        };
        match btf.read_field(id, off, size) {
            crate::kernel_btf::FieldRead::Scalar => Some(Reg::scalar(Scalar::unknown_of_size(size))),
            crate::kernel_btf::FieldRead::Pointer(member) => refuse(
                self,
                Code::Unsupported,
                format!(
                    "read of struct {sname}.{member} through R{r}: a kernel pointer (PTR_TO_BTF_ID), not supported by duet"
                ),
                "the kernel gives a BTF-typed pointer for a pointer member of a map's structure; duet verifies only reads of its number fields (max_entries, key_size, ...)",
            ),
            crate::kernel_btf::FieldRead::Refused(why) => refuse(
                self,
                Code::InvalidPointer,
                format!("invalid {size}-byte read of struct {sname} at offset {off} through R{r}: {why}"),
                "read whole fields of the map's structure (`((struct bpf_map *)&my_map)->max_entries`); a map handle is not a map value: bpf_map_lookup_elem gives one",
            ),
        }
    }

    /// An access through a pointer to a kernel object programs may only read some fields of
    /// (`struct bpf_tcp_sock`, an AF_XDP socket): a read of a field `field_ok` allows gives an
    /// unknown number, anything else is refused with `help`.
    fn read_only_fields(
        &mut self,
        st: &State,
        pc: usize,
        (r, ptr, insn_off, size, kind): (u8, &Reg, i16, u32, Access),
        what: &str,
        field_ok: impl Fn(i64, u32) -> bool,
        help: &str,
    ) -> Option<Reg> {
        self.facts[pc].mem = Some(MemRegion::Mixed);
        let off = ptr.val.as_const().map(|v| (i64::from(ptr.off) + i64::from(insn_off)).wrapping_add(v as i64));
        if kind == Access::Read && off.is_some_and(|off| field_ok(off, size)) {
            return Some(Reg::scalar(Scalar::unknown_of_size(size)));
        }
        let d = Diagnostic::new(
            Code::SocketAccess,
            Some(pc),
            format!(
                "invalid {what} access through R{r}: {size}-byte {} at offset {}",
                kind.verb(),
                off.map_or_else(|| ptr.val.to_string(), |o| o.to_string())
            ),
        )
        .help(help.to_owned());
        self.fail_access(st, pc, r, d)
    }

    #[allow(clippy::too_many_arguments, reason = "mirrors the instruction's fields")]
    fn ctx_access(
        &mut self,
        st: &State,
        pc: usize,
        r: u8,
        ptr: &Reg,
        insn_off: i16,
        size: u32,
        kind: Access,
    ) -> Option<Reg> {
        self.facts[pc].mem = merge_region(self.facts[pc].mem, MemRegion::Context);
        let ty = self.ctx.program_type;
        if !ptr.val.is_const(0) {
            let d = Diagnostic::new(
                Code::ContextAccess,
                Some(pc),
                format!("context access through R{r} with a variable offset ({})", ptr.val),
            )
            .help("context fields must be read at constant offsets (`ctx->field`)");
            return self.fail_access(st, pc, r, d);
        }
        // As the kernel: the context is read through the pointer the program got, the field
        // named by the instruction's offset alone; a moved pointer is never dereferenced (the
        // kernel rewrites context accesses by that offset).
        if ptr.off != 0 {
            let d = Diagnostic::new(
                Code::ContextAccess,
                Some(pc),
                format!("dereference of modified ctx ptr R{r} off={} disallowed", ptr.off),
            )
            .help("read the field as `*(ctx + offset)` from the context pointer itself, not from a moved copy");
            return self.fail_access(st, pc, r, d);
        }
        let off = i64::from(insn_off);
        let ctx_name = ty.context_name();
        if kind != Access::Read {
            let d = Diagnostic::new(
                Code::ContextAccess,
                Some(pc),
                format!(
                    "{} to {ctx_name} at offset {off}: the context is read-only for {} programs",
                    kind.verb(),
                    ty.name()
                ),
            )
            .help("copy the field into a local variable and change that instead");
            return self.fail_access(st, pc, r, d);
        }
        let field = match ty {
            ProgramType::Xdp => match off {
                0 => Some(("data", Reg::pointer(RegType::Packet), 4)),
                4 => Some(("data_end", Reg::pointer(RegType::PacketEnd), 4)),
                8 => Some(("data_meta", Reg::pointer(RegType::PacketMeta), 4)),
                12 => Some(("ingress_ifindex", Reg::scalar(Scalar::unknown_of_size(4)), 4)),
                16 => Some(("rx_queue_index", Reg::scalar(Scalar::unknown_of_size(4)), 4)),
                _ => None,
            },
            ProgramType::SocketFilter | ProgramType::SchedCls | ProgramType::CgroupSkb => crate::skb_field(ty, off)
                .map(|(name, value)| {
                    let reg = match value {
                        crate::SkbValue::Data => Reg::pointer(RegType::Packet),
                        crate::SkbValue::DataEnd => Reg::pointer(RegType::PacketEnd),
                        crate::SkbValue::Scalar(bytes) => Reg::scalar(Scalar::unknown_of_size(bytes)),
                        // The packet's socket, if any: NULL-checked like a lookup's result,
                        // but the program holds no reference to release.
                        crate::SkbValue::SockCommon => {
                            Reg { id: self.new_id(), ..Reg::pointer(RegType::SocketOrNull { common: true }) }
                        }
                    };
                    (name, reg, value.load_size())
                }),
            ProgramType::HttpRequest | ProgramType::HttpResponse | ProgramType::Route => {
                let name = usize::try_from(off).ok().filter(|o| o % 4 == 0).and_then(|o| HTTP_MD_FIELDS.get(o / 4));
                name.map(|n| (*n, Reg::scalar(Scalar::unknown_of_size(4)), 4))
            }
            ProgramType::KProbe | ProgramType::TracePoint | ProgramType::RawTracePoint | ProgramType::PerfEvent => {
                if tracing_ctx_readable(ty, off, i64::from(size)) {
                    return Some(Reg::scalar(Scalar::unknown_of_size(size)));
                }
                None
            }
        };
        match field {
            Some((_, reg, field_size)) if size == field_size => Some(reg),
            Some((name, _, 8)) => {
                let d = Diagnostic::new(
                    Code::ContextAccess,
                    Some(pc),
                    format!("{size}-byte read of {ctx_name}.{name}, an 8-byte pointer"),
                )
                .help(format!(
                    "read {ctx_name}.{name} whole, with a 64-bit load (`struct bpf_sock *sk = ctx->{name};`)"
                ));
                self.fail_access(st, pc, r, d)
            }
            Some((name, _, _)) => {
                let d = Diagnostic::new(
                    Code::ContextAccess,
                    Some(pc),
                    format!("{size}-byte read of {ctx_name}.{name}, a 4-byte field"),
                )
                .help(format!("read {ctx_name} fields with 32-bit loads (`__u32 v = ctx->{name};`)"));
                self.fail_access(st, pc, r, d)
            }
            None => {
                let why = match (ty, off) {
                    (ProgramType::Xdp, 20) => {
                        "egress_ifindex is only readable by programs attached to a devmap".to_owned()
                    }
                    (ProgramType::SocketFilter | ProgramType::SchedCls | ProgramType::CgroupSkb, 0..192) => {
                        crate::skb_refusal(ty, off)
                    }
                    (ProgramType::KProbe, _) => format!(
                        "a {size}-byte read at offset {off} is misaligned or runs past the end of struct pt_regs ({PT_REGS_SIZE} bytes)"
                    ),
                    (ProgramType::TracePoint, ..8) => "the tracepoint record's first 8 bytes are not readable (the kernel keeps them); fields start at offset 8".to_owned(),
                    (ProgramType::TracePoint, _) => format!(
                        "a {size}-byte read at offset {off} is misaligned or past the kernel's limit of {TRACE_RECORD_MAX} bytes"
                    ),
                    (ProgramType::RawTracePoint, _) => format!(
                        "a {size}-byte read at offset {off} is misaligned or past the 12 u64 arguments ({RAW_TP_ARGS_SIZE} bytes)"
                    ),
                    (ProgramType::PerfEvent, 0..PT_REGS_SIZE) if off % i64::from(size) == 0 => {
                        format!("the registers in struct bpf_perf_event_data are read 8 bytes at a time, not {size}")
                    }
                    (ProgramType::PerfEvent, _) => format!(
                        "a {size}-byte read at offset {off} is misaligned or runs past the end of struct bpf_perf_event_data ({PERF_EVENT_DATA_SIZE} bytes)"
                    ),
                    _ => format!("{ctx_name} has no field at offset {off}"),
                };
                let d = Diagnostic::new(
                    Code::ContextAccess,
                    Some(pc),
                    format!("invalid context read at offset {off}: {why}"),
                )
                .help(format!("{} programs may read: {}", ty.name(), ty.context_fields()));
                self.fail_access(st, pc, r, d)
            }
        }
    }

    #[allow(clippy::too_many_arguments, reason = "mirrors the instruction's fields")]
    pub(super) fn packet_access(
        &mut self,
        st: &State,
        pc: usize,
        r: u8,
        ptr: &Reg,
        insn_off: i16,
        size: u32,
        kind: Access,
    ) -> Option<Reg> {
        let region = if ptr.ty == RegType::Packet { MemRegion::Packet } else { MemRegion::PacketMeta };
        self.facts[pc].mem = merge_region(self.facts[pc].mem, region);
        if kind == Access::Atomic {
            let d = Diagnostic::new(Code::InvalidPointer, Some(pc), "atomic operations are not allowed on packet data")
                .help("keep counters in map values");
            return self.fail_access(st, pc, r, d);
        }
        if kind != Access::Read && self.ctx.program_type == ProgramType::CgroupSkb {
            let d = Diagnostic::new(
                Code::ReadOnly,
                Some(pc),
                format!("{} of packet data in a cgroup_skb program, which may only read the packet", kind.verb()),
            )
            .help("cgroup_skb programs pass (1) or drop (0) packets; change packets in a TC classifier");
            return self.fail_access(st, pc, r, d);
        }
        let off = i64::from(ptr.off) + i64::from(insn_off);
        let end = off + i64::from(size);
        let what = if ptr.ty == RegType::Packet { "packet" } else { "packet metadata" };
        let base = if ptr.ty == RegType::Packet { "data" } else { "data_meta" };
        let limit = if ptr.ty == RegType::Packet { "data_end" } else { "data" };
        if ptr.val.smin < 0 {
            let d = Diagnostic::new(
                Code::PacketBounds,
                Some(pc),
                format!("{what} {} through R{r}, whose variable offset may be negative ({})", kind.verb(), ptr.val),
            )
            .help("use an unsigned offset, or check `if (off < 0) return ...;` before adding it to the pointer");
            return self.fail_access(st, pc, r, d);
        }
        if off < 0 || end > i64::from(ptr.range) {
            let variable = !ptr.val.is_const(0);
            let mut d = Diagnostic::new(
                Code::PacketBounds,
                Some(pc),
                format!(
                    "{size}-byte {what} {} at offset {off} of R{r} is not proven to lie before {limit}",
                    kind.verb()
                ),
            );
            let at =
                if variable { format!("R{r} (which includes a variable offset {})", ptr.val) } else { base.to_owned() };
            let help = if off < 0 {
                format!(
                    "the access starts {} bytes before the pointer's base; the verifier only allows accesses at or after it",
                    -off
                )
            } else if ptr.range == 0 {
                format!(
                    "no bounds check covers this pointer: check `if ({at} + {end} > {limit}) return ...;` before the {}",
                    kind.verb()
                )
            } else {
                let checked = if ptr.range_pc == u32::MAX {
                    String::new()
                } else {
                    format!(" at {}", self.where_(ptr.range_pc as usize))
                };
                format!(
                    "the bound checked{checked} covers {} bytes from {at}, but this {size}-byte {} at offset {off} needs {end}: check `{at} + {end} > {limit}` first",
                    ptr.range,
                    kind.verb()
                )
            };
            if variable && ptr.range == 0 {
                d = d.note("adding a variable to a packet pointer forgets earlier checks; compare the new pointer with data_end again");
            }
            return self.fail_access(st, pc, r, d.help(help));
        }
        Some(Reg::scalar(Scalar::unknown_of_size(size)))
    }

    #[allow(clippy::too_many_arguments, reason = "mirrors the instruction's fields")]
    pub(super) fn bounded_access(
        &mut self,
        st: &State,
        pc: usize,
        r: u8,
        ptr: &Reg,
        insn_off: i16,
        size: u32,
        kind: Access,
        bounds: Bounds,
    ) -> Option<Reg> {
        let (limit, name, region) = match bounds {
            Bounds::Map(m) => {
                let info = self.maps.get(m as usize)?;
                (info.value_size, format!("map `{}` value", info.name), MemRegion::MapValue { map: m })
            }
            Bounds::Record(s) => (s, "ring buffer record".to_owned(), MemRegion::Record),
        };
        self.facts[pc].mem = merge_region(self.facts[pc].mem, region);
        let code = if matches!(bounds, Bounds::Map(_)) { Code::MapValueBounds } else { Code::RecordBounds };
        let off = i64::from(ptr.off) + i64::from(insn_off);
        if ptr.val.umax >= MAX_VAR_OFF as u64 || ptr.val.smin <= -MAX_VAR_OFF {
            let d = Diagnostic::new(
                code,
                Some(pc),
                format!("{} of the {name} through R{r} with an unbounded offset ({})", kind.verb(), ptr.val),
            )
            .help(format!("bound the index first: `if (i >= N) return ...;` with an unsigned type, so that every offset lies within the {limit}-byte value"));
            return self.fail_access(st, pc, r, d);
        }
        let lo = off + ptr.val.smin.min(ptr.val.umax as i64);
        let hi = off + ptr.val.umax as i64 + i64::from(size);
        if lo < 0 || hi > i64::from(limit) {
            let range = if ptr.val.as_const().is_some() {
                format!("bytes {}..{}", lo, hi)
            } else {
                format!("bytes from {lo} up to {hi}")
            };
            let d = Diagnostic::new(
                code,
                Some(pc),
                format!("{size}-byte {} of the {name} ({limit} bytes) may touch {range}", kind.verb()),
            )
            .help(if ptr.val.as_const().is_some() {
                format!("the value is {limit} bytes long; check the offset and the field's size")
            } else {
                format!(
                    "bound the variable offset so that offset + {size} <= {limit} (e.g. `if (i >= {}) return ...;`)",
                    (i64::from(limit) - off - i64::from(size) + 1).max(0)
                )
            });
            return self.fail_access(st, pc, r, d);
        }
        if let Bounds::Map(m) = bounds
            && let Some(info) = self.maps.get(m as usize)
        {
            if kind != Access::Read && !info.prog_can_write() {
                let d = Diagnostic::new(
                    Code::ReadOnly,
                    Some(pc),
                    format!("{} to map `{}`, which is read-only for programs", kind.verb(), info.name),
                )
                .help("`const` globals (.rodata) and maps created with BPF_F_RDONLY_PROG cannot be written by the program; drop `const` or the flag");
                return self.fail_access(st, pc, r, d);
            }
            if kind != Access::Write && !info.prog_can_read() {
                // An atomic update reads the old value too, so it is refused as well.
                let d = Diagnostic::new(
                    Code::WriteOnly,
                    Some(pc),
                    format!(
                        "{} of map `{}`, which is write-only for programs (BPF_F_WRONLY_PROG): read from map forbidden",
                        kind.verb(),
                        info.name
                    ),
                )
                .help("a map created with BPF_F_WRONLY_PROG can only be written by the program (plain stores); drop the flag to read it");
                return self.fail_access(st, pc, r, d);
            }
            if kind == Access::Read
                && size <= 8
                && let (Some(data), Some(v)) = (&info.frozen_data, ptr.val.as_const())
            {
                // Frozen read-only data is known at load time, as the kernel knows `.rodata`.
                // Only loads (at most 8 bytes) become constants; a helper reading a longer
                // buffer (a `bpf_printk` format string) just needs the bounds proven above.
                let start = usize::try_from(off.saturating_add(v as i64)).ok();
                if let Some(bytes) = start.and_then(|s| data.get(s..s.checked_add(size as usize)?)) {
                    let mut buf = [0u8; 8];
                    buf[..bytes.len()].copy_from_slice(bytes);
                    return Some(Reg::scalar(Scalar::constant(u64::from_le_bytes(buf))));
                }
            }
        }
        Some(Reg::scalar(Scalar::unknown_of_size(size)))
    }

    /// The absolute stack byte range `[lo, hi)` (relative to the frame pointer) an access covers,
    /// after checking bounds and alignment.
    #[allow(clippy::too_many_arguments, reason = "mirrors the instruction's fields")]
    pub(super) fn stack_range(
        &mut self,
        st: &State,
        pc: usize,
        r: u8,
        ptr: &Reg,
        insn_off: i16,
        size: u32,
        kind: Access,
        aligned: bool,
    ) -> Option<(i64, i64)> {
        let off = i64::from(ptr.off) + i64::from(insn_off);
        let (vlo, vhi) = (ptr.val.smin, ptr.val.smax);
        if vlo <= -MAX_VAR_OFF || vhi >= MAX_VAR_OFF {
            let d = Diagnostic::new(
                Code::StackAccess,
                Some(pc),
                format!("stack {} through R{r} with an unbounded offset ({})", kind.verb(), ptr.val),
            )
            .help("bound the index before adding it to a stack pointer");
            return self.fail_access(st, pc, r, d);
        }
        let lo = off + vlo;
        let hi = off + vhi + i64::from(size);
        if lo < -MAX_STACK || hi > 0 {
            let d = Diagnostic::new(
                if lo < -MAX_STACK { Code::StackLimit } else { Code::StackAccess },
                Some(pc),
                format!("{size}-byte stack {} at fp{lo:+} is outside the 512-byte frame (fp-512 .. fp)", kind.verb()),
            )
            .help(if lo < -MAX_STACK {
                "eBPF gives each function 512 bytes of stack: move large buffers into a per-CPU array map"
            } else {
                "the stack lies below the frame pointer: use negative offsets from r10"
            });
            return self.fail_access(st, pc, r, d);
        }
        if aligned && ptr.val.as_const().is_some() && lo.rem_euclid(i64::from(size)) != 0 {
            let d = Diagnostic::new(
                Code::StackAccess,
                Some(pc),
                format!("misaligned {size}-byte stack {} at fp{lo}", kind.verb()),
            )
            .help(format!("stack accesses must be aligned to their size ({size} bytes)"));
            return self.fail_access(st, pc, r, d);
        }
        if let RegType::Stack { frame } = ptr.ty
            && let Some(f) = st.frames.get(usize::from(frame))
        {
            let depth = (-lo) as u32;
            let sp = f.subprog;
            if let Some(d) = self.stack_depth.get_mut(sp) {
                *d = (*d).max(depth);
            }
        }
        Some((lo, hi))
    }

    #[allow(clippy::too_many_arguments, reason = "mirrors the instruction's fields")]
    fn stack_access(
        &mut self,
        st: &mut State,
        pc: usize,
        r: u8,
        ptr: &Reg,
        insn_off: i16,
        size: u32,
        kind: Access,
        value: Option<Reg>,
    ) -> Option<Reg> {
        self.facts[pc].mem = merge_region(self.facts[pc].mem, MemRegion::Stack);
        let RegType::Stack { frame } = ptr.ty else { return None };
        let frame = usize::from(frame);
        let (lo, hi) = self.stack_range(st, pc, r, ptr, insn_off, size, kind, true)?;
        if frame >= st.frames.len() {
            return None;
        }
        let exact = ptr.val.as_const().is_some();
        if kind != Access::Write {
            // Read (or the read half of an atomic).
            let mut known: u64 = 0;
            let mut all_known = true;
            let mut uninit = None;
            if exact {
                let (si, b) = slot_of(lo);
                let slot = st.frames[frame].slot(si).clone();
                let spill = slot.spill_size();
                if spill > 0 && b < spill {
                    let sreg = slot.spill.unwrap_or(Reg::NOT_INIT);
                    if b == 0 && size as usize == spill && kind == Access::Read {
                        return Some(sreg);
                    }
                    if sreg.ty.is_pointer() {
                        let d = Diagnostic::new(
                            Code::StackAccess,
                            Some(pc),
                            format!("{size}-byte {} of part of a pointer spilled at fp{}", kind.verb(), lo - b as i64),
                        )
                        .help("a spilled pointer must be read back whole, with an 8-byte load");
                        self.fail(st, pc, &[r], d);
                        return Some(Reg::scalar(Scalar::unknown_of_size(size)));
                    }
                }
                // As the kernel (`check_stack_read_fixed_off`): a read from the start of a spill,
                // no wider than it, is the spilled value cut to the read's size; any other read
                // touching spilled bytes is zero only if it reads nothing but the spill of a zero,
                // else an unknown number.
                let narrow_fill = spill > 0 && b == 0 && size as usize <= spill;
                let spilled = slot.spill.and_then(|s| s.as_const());
                let mut spill_bytes = 0;
                for i in 0..size as usize {
                    let bi = b + i;
                    match slot.bytes[bi] {
                        ByteKind::Invalid => {
                            uninit.get_or_insert(lo + i as i64);
                        }
                        ByteKind::Zero => {}
                        ByteKind::Misc => all_known = false,
                        ByteKind::Spill if narrow_fill => match spilled {
                            Some(c) if bi < 8 => known |= ((c >> (8 * bi)) & 0xff) << (8 * i),
                            _ => all_known = false,
                        },
                        ByteKind::Spill => {
                            spill_bytes += 1;
                            if spilled != Some(0) {
                                all_known = false;
                            }
                        }
                    }
                }
                if spill_bytes > 0 && spill_bytes != size as usize {
                    all_known = false;
                }
            } else {
                all_known = false;
                for addr in lo..hi {
                    let (si, b) = slot_of(addr);
                    let slot = st.frames[frame].slot(si);
                    if slot.bytes[b] == ByteKind::Invalid {
                        uninit.get_or_insert(addr);
                    }
                    if slot.bytes[b] == ByteKind::Spill && slot.has_pointer() && !self.allow_ptr_leaks() {
                        let d = Diagnostic::new(
                            Code::StackAccess,
                            Some(pc),
                            format!("variable-offset stack {} may read part of a spilled pointer", kind.verb()),
                        )
                        .help("keep pointers and indexed buffers in different stack slots");
                        self.fail(st, pc, &[r], d);
                        return Some(Reg::scalar(Scalar::unknown_of_size(size)));
                    }
                }
            }
            if let Some(addr) = uninit
                && !self.allow_uninit_stack()
            {
                let d = Diagnostic::new(
                    Code::UninitStack,
                    Some(pc),
                    format!("{size}-byte stack {} at fp{lo} reads fp{addr}, which was never written", kind.verb()),
                )
                .help("initialise stack variables before reading them (e.g. `struct key k = {};`)");
                self.fail(st, pc, &[r], d);
            }
            if kind == Access::Read {
                return Some(Reg::scalar(if all_known && uninit.is_none() {
                    Scalar::constant(known)
                } else {
                    Scalar::unknown_of_size(size)
                }));
            }
        }
        // Write (or the write half of an atomic).
        let value = value.unwrap_or(Reg::scalar(Scalar::unknown_of_size(size)));
        if let RegType::Stack { frame: pf } = value.ty
            && usize::from(pf) > frame
        {
            let d = Diagnostic::new(
                Code::StackAccess,
                Some(pc),
                "storing a pointer to a called function's stack into its caller's stack",
            )
            .help("the callee's stack ends when it returns; the pointer would dangle");
            self.fail(st, pc, &[r], d);
        }
        if !exact {
            // Privileged, the kernel lets a variable-offset write cover unwritten bytes (they
            // count as written: a privileged read of them is an unknown number either way) and
            // spilled pointers (which become plain bytes).
            let privileged = self.allow_uninit_stack() && self.allow_ptr_leaks();
            for addr in lo..hi {
                let (si, b) = slot_of(addr);
                let slot = st.frames[frame].slot_mut(si);
                if slot.bytes[b] == ByteKind::Invalid && !privileged {
                    let d = Diagnostic::new(
                        Code::UninitStack,
                        Some(pc),
                        format!("variable-offset stack write over fp{lo}..fp{hi} may leave fp{addr} unwritten"),
                    )
                    .help("initialise the whole buffer with constant offsets before writing at variable offsets");
                    return self.fail_access(st, pc, r, d);
                }
            }
            for addr in lo..hi {
                let (si, b) = slot_of(addr);
                let slot = st.frames[frame].slot_mut(si);
                if slot.spill.is_some() && slot.has_pointer() && !privileged {
                    let d = Diagnostic::new(
                        Code::StackAccess,
                        Some(pc),
                        "variable-offset stack write may overwrite part of a spilled pointer",
                    );
                    return self.fail_access(st, pc, r, d);
                }
                scrub_spill(slot);
                slot.bytes[b] = ByteKind::Misc;
            }
            return None;
        }
        let (si, b) = slot_of(lo);
        let size_u = size as usize;
        if kind == Access::Write && !self.allow_ptr_leaks() {
            // Without CAP_PERFMON the kernel guards against Spectre v4 (speculative store
            // bypass): a fixed-offset stack store of a pointer, or one over bytes that are not
            // plain data or zero (a spilled register, never-written bytes), gets a barrier after
            // it (`nospec_result`, kept per instruction), and a speculative path that executes
            // it ends there. duet remembers the barriers a path's own history set (the kernel
            // has set those too, and maybe more), so it ends speculative paths no earlier than
            // the kernel and never misses a loop the kernel finds.
            let slot = st.frames[frame].slot(si);
            let pointer = value.ty.is_pointer() && !matches!(value.ty, RegType::Stale { .. });
            let not_data = slot.bytes[b..b + size_u].iter().any(|k| matches!(k, ByteKind::Invalid | ByteKind::Spill));
            let at = pc as u32;
            if (pointer || not_data)
                && let Err(i) = st.barriers.binary_search(&at)
            {
                st.barriers.insert(i, at);
            }
            if st.speculative && st.barriers.binary_search(&at).is_ok() {
                self.spec_end_after = true;
            }
        }
        {
            let slot = st.frames[frame].slot(si);
            let spill = slot.spill_size();
            let overlaps = spill > 0 && b < spill;
            let replaces = b == 0 && size_u >= spill;
            if overlaps && !replaces && slot.has_pointer() && !self.allow_ptr_leaks() {
                let d = Diagnostic::new(
                    Code::StackAccess,
                    Some(pc),
                    format!("{size}-byte {} overwrites part of a pointer spilled at fp{}", kind.verb(), lo - b as i64),
                )
                .help("overwrite a spilled pointer whole (8 bytes), or use another stack slot");
                self.fail(st, pc, &[r], d);
            }
        }
        let slot = st.frames[frame].slot_mut(si);
        if slot.spill.is_some() && (b < slot.spill_size()) {
            scrub_spill(slot);
        }
        if kind == Access::Atomic {
            for byte in &mut slot.bytes[b..b + size_u] {
                *byte = ByteKind::Misc;
            }
            return None;
        }
        if b == 0 && size_u == 8 {
            *slot = Slot { bytes: [ByteKind::Spill; 8], spill: Some(value) };
        } else if value.ty.is_pointer() {
            for byte in &mut slot.bytes[b..b + size_u] {
                *byte = ByteKind::Misc;
            }
            let d = Diagnostic::new(
                Code::PointerLeak,
                Some(pc),
                format!("{size}-byte store of a pointer to the stack: only whole 8-byte spills keep pointers intact"),
            )
            .help("spill pointers with 8-byte aligned stores");
            self.fail(st, pc, &[r], d);
        } else if b == 0 && slot.spill.is_none() {
            let mut v = value;
            v.val = v.val.truncate(size);
            // The spilled bytes are no longer a copy of the register: break the link.
            v.id = 0;
            for byte in &mut slot.bytes[..size_u] {
                *byte = ByteKind::Spill;
            }
            slot.spill = Some(v);
        } else {
            let kind = if value.as_const() == Some(0) { ByteKind::Zero } else { ByteKind::Misc };
            for byte in &mut slot.bytes[b..b + size_u] {
                *byte = kind;
            }
        }
        None
    }
}

/// Which bounded region an access is checked against.
#[derive(Clone, Copy)]
pub(super) enum Bounds {
    Map(u32),
    Record(u32),
}

/// Slot index and byte within the slot of the stack byte at `addr` (negative, fp-relative).
pub(super) fn slot_of(addr: i64) -> (usize, usize) {
    let below = (-addr - 1) as usize;
    let slot = below / 8;
    let b = (addr + 8 * (slot as i64 + 1)) as usize;
    (slot, b)
}

/// Turns a spilled scalar into untracked bytes.
pub(super) fn scrub_spill(slot: &mut Slot) {
    if slot.spill.is_some() {
        for byte in &mut slot.bytes {
            if *byte == ByteKind::Spill {
                *byte = ByteKind::Misc;
            }
        }
        slot.spill = None;
    }
}

pub(super) fn merge_region(old: Option<MemRegion>, new: MemRegion) -> Option<MemRegion> {
    match old {
        None => Some(new),
        Some(o) if o == new => Some(o),
        Some(_) => Some(MemRegion::Mixed),
    }
}

/// Whether a tracing program of type `ty` may read `size` bytes of its context at `off`, as the
/// kernel's `kprobe_prog_is_valid_access`, `tp_prog_is_valid_access`,
/// `raw_tp_prog_is_valid_access` (`bpf_tracing_ctx_access`) and `pe_prog_is_valid_access` allow
/// on x86-64: reads only, aligned to their size, inside the context; a tracepoint's first 8
/// bytes are not readable; perf_event registers are read whole (8 bytes), its two u64 fields
/// in any size.
fn tracing_ctx_readable(ty: ProgramType, off: i64, size: i64) -> bool {
    if off < 0 || size <= 0 || off % size != 0 {
        return false;
    }
    match ty {
        ProgramType::KProbe => off + size <= PT_REGS_SIZE,
        ProgramType::TracePoint => (8..TRACE_RECORD_MAX).contains(&off),
        ProgramType::RawTracePoint => off < RAW_TP_ARGS_SIZE,
        ProgramType::PerfEvent => off < PERF_EVENT_DATA_SIZE && (off >= PT_REGS_SIZE || size == 8),
        _ => false,
    }
}

/// `struct bpf_sock`'s size.
const BPF_SOCK_SIZE: i64 = 80;

/// Whether a `size`-byte read at `off` of a `struct bpf_sock` (or, when `common`, a
/// `struct bpf_sock_common`) is one the kernel allows (`bpf_sock_is_valid_access`,
/// `bpf_sock_common_is_valid_access`).
fn sock_field_ok(common: bool, off: i64, size: u32) -> bool {
    let size = i64::from(size);
    if !(0..BPF_SOCK_SIZE).contains(&off) || off % size != 0 {
        return false;
    }
    // type, protocol, mark, priority: not in a request or timewait socket.
    if common && (8..24).contains(&off) {
        return false;
    }
    match off {
        // family, type, protocol, src_port, state, rx_queue_mapping: narrow reads of the field's
        // first bytes; src_ip4, src_ip6, dst_ip4, dst_ip6: any aligned part.
        4 | 8 | 12 | 44 | 72 | 76 | 24..=43 | 52..=71 => size <= 4,
        // dst_port: a 2-byte field read as 4 bytes, or in parts.
        48 => size <= 4,
        49 => size == 1,
        50 | 51 => false,
        // bound_dev_if, mark, priority: whole.
        _ => size == 4,
    }
}

/// Whether a `size`-byte read at `off` of a `struct bpf_tcp_sock` is one the kernel allows
/// (`bpf_tcp_sock_is_valid_access`): the u32 fields whole, bytes_received and bytes_acked (u64)
/// whole.
fn tcp_sock_field_ok(off: i64, size: u32) -> bool {
    // offsetofend(struct bpf_tcp_sock, icsk_retransmits)
    const END: i64 = 112;
    if !(0..END).contains(&off) || off % i64::from(size) != 0 {
        return false;
    }
    match off {
        80 | 88 => size == 8,
        // The upper halves of the u64 fields pass the kernel's check but fail its rewrite of
        // the load ("error during ctx access conversion"): refused all the same.
        84 | 92 => false,
        _ => size == 4,
    }
}

/// The `struct bpf_sock` field at `off`, for messages.
fn sock_field_name(off: i64) -> &'static str {
    match off {
        0..=3 => "bound_dev_if",
        4..=7 => "family",
        8..=11 => "type",
        12..=15 => "protocol",
        16..=19 => "mark",
        20..=23 => "priority",
        24..=27 => "src_ip4",
        28..=43 => "src_ip6",
        44..=47 => "src_port",
        48..=49 => "dst_port",
        50..=51 => "padding",
        52..=55 => "dst_ip4",
        56..=71 => "dst_ip6",
        72..=75 => "state",
        76..=79 => "rx_queue_mapping",
        _ => "outside struct bpf_sock",
    }
}
