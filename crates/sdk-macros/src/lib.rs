//! # duet-macros — the attributes of duet programs
//!
//! **API boundary**, used through the `duet` crate's re-exports (`#[duet::xdp]`, ...). Each
//! attribute expands to code for all three targets at once, each part behind a `cfg` on
//! `target_arch`, so user code never needs a `cfg`:
//!
//! - `bpf`: the program as an `extern "C"` function in the ELF section the kernel's loaders
//!   recognise (`xdp`, `classifier`, `socket`, `cgroup_skb/ingress`, `kprobe`, `cgroup/connect4`,
//!   `cgroup/connect6`, `sockops`, `sk_msg`, `sk_lookup`, `tracepoint/<category>/<name>`) or, for the userspace-only HTTP programs, duet's own
//!   (`duet/http_request`, `duet/http_response`, `duet/route`), maps as BTF definitions in `.maps`;
//! - `wasm32`: the program as the export `duet_prog_<kind>_<name>` of docs/ABI.md, maps as
//!   records in the `duet.maps.v1` custom section that `duet build` turns into the `duet.maps`
//!   manifest; a kernel-only program (`connect4`, `connect6`, `sock_ops`, `sk_msg`, `sk_lookup`, `tracepoint`) as a record in `duet.kernel_only`
//!   instead, which makes `duet build` refuse the module;
//! - the host: the program as the plain function unit tests call.
//!
//! Map ids are handed out in expansion order (which is declaration order for maps in one
//! file), by a counter in this process: rustc compiles one crate per process, so the ids of a
//! crate are 0, 1, 2, ... The id is written both into the code that uses the map and into the
//! map's record, so code and manifest agree whatever the order. The BPF build records the same
//! ids (a line `<id> <name>` in the ELF section `duet.map_order.<id>`), so every executor lists a
//! crate's maps in one order, the order of their ids.
//!
//! The parser is hand-written over `proc_macro` tokens (no syn), for build time.

use std::sync::atomic::{AtomicU32, Ordering};

use proc_macro::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};

/// The next map id of the crate being compiled.
static NEXT_MAP_ID: AtomicU32 = AtomicU32::new(0);

/// The prefix of the ELF sections where the BPF build records each map's id: section
/// `duet.map_order.<id>` holds the line `<id> <name>\n` (docs/ABI.md, map order); duet-object
/// reads them under the same name.
const MAP_ORDER_SECTION: &str = "duet.map_order";

/// Declares a map: `#[duet::map] static NAME: HashMap<K, V> = HashMap::with_max_entries(N, FLAGS);`
///
/// The map is named after the static on every executor. `N` and `FLAGS` may be any constant
/// expressions; they become const generic arguments of the static's type.
#[proc_macro_attribute]
pub fn map(attr: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(tt) = attr.into_iter().next() {
        return error(tt.span(), "#[duet::map] takes no arguments");
    }
    expand_map(item).unwrap_or_else(|(span, msg)| error(span, &msg))
}

/// Declares an XDP program: `#[duet::xdp] fn name(ctx: XdpContext) -> XdpAction { ... }`.
///
/// BPF: an `extern "C"` function `name` in section `xdp`. Wasm: the export
/// `duet_prog_xdp_<name>`. Host: the function itself, for `duet::testing::run_xdp`.
#[proc_macro_attribute]
pub fn xdp(attr: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(tt) = attr.into_iter().next() {
        return error(tt.span(), "#[duet::xdp] takes no arguments");
    }
    expand_program(item, Kind::Xdp).unwrap_or_else(|(span, msg)| error(span, &msg))
}

/// Declares a TC classifier: `#[duet::classifier] fn name(ctx: TcContext) -> TcAction { ... }`.
///
/// BPF: an `extern "C"` function `name` in section `classifier` (attach it with TC/tcx, ingress
/// or egress). Wasm: the export `duet_prog_classifier_<name>`. Host: the function itself, for
/// `duet::testing::run_classifier`.
#[proc_macro_attribute]
pub fn classifier(attr: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(tt) = attr.into_iter().next() {
        return error(tt.span(), "#[duet::classifier] takes no arguments");
    }
    expand_program(item, Kind::Classifier).unwrap_or_else(|(span, msg)| error(span, &msg))
}

/// Declares a socket filter: `#[duet::socket_filter] fn name(ctx: SkbContext) -> u32 { ... }`,
/// returning how many bytes of the packet to keep (0 drops it).
///
/// BPF: an `extern "C"` function `name` in section `socket`. Wasm: the export
/// `duet_prog_socket_filter_<name>`. Host: the function itself, for
/// `duet::testing::run_socket_filter`.
#[proc_macro_attribute]
pub fn socket_filter(attr: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(tt) = attr.into_iter().next() {
        return error(tt.span(), "#[duet::socket_filter] takes no arguments");
    }
    expand_program(item, Kind::SocketFilter).unwrap_or_else(|(span, msg)| error(span, &msg))
}

/// Declares a cgroup skb program:
/// `#[duet::cgroup_skb(ingress)] fn name(ctx: SkbContext) -> CgroupSkbAction { ... }` (or
/// `egress`), which passes or drops the packets of a cgroup's sockets.
///
/// BPF: an `extern "C"` function `name` in section `cgroup_skb/ingress` or `cgroup_skb/egress`.
/// Wasm: the export `duet_prog_cgroup_skb_<name>` (userspace runs over captures do not tell the
/// directions apart). Host: the function itself, for `duet::testing::run_cgroup_skb`.
#[proc_macro_attribute]
pub fn cgroup_skb(attr: TokenStream, item: TokenStream) -> TokenStream {
    let words: Vec<TokenTree> = attr.into_iter().collect();
    let kind = match words.as_slice() {
        [TokenTree::Ident(id)] if id.to_string() == "ingress" => Kind::CgroupSkbIngress,
        [TokenTree::Ident(id)] if id.to_string() == "egress" => Kind::CgroupSkbEgress,
        [tt, ..] => return error(tt.span(), "expected `ingress` or `egress`: #[duet::cgroup_skb(ingress)]"),
        [] => {
            return error(
                Span::call_site(),
                "name the direction: #[duet::cgroup_skb(ingress)] or #[duet::cgroup_skb(egress)]",
            );
        }
    };
    expand_program(item, kind).unwrap_or_else(|(span, msg)| error(span, &msg))
}

/// Declares an event program: `#[duet::probe] fn name(ctx: ProbeContext) { ... }`.
///
/// BPF: an `extern "C"` function `name` in section `kprobe`. Wasm: the export
/// `duet_prog_probe_<name>`, returning 0. Host: the function itself, for
/// `duet::testing::run_probe`.
#[proc_macro_attribute]
pub fn probe(attr: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(tt) = attr.into_iter().next() {
        return error(tt.span(), "#[duet::probe] takes no arguments");
    }
    expand_program(item, Kind::Probe).unwrap_or_else(|(span, msg)| error(span, &msg))
}

/// Declares a cgroup connect4 program (kernel only):
/// `#[duet::connect4] fn name(ctx: SockAddrContext) -> SockAddrAction { ... }`, which sees and may
/// rewrite the destination of every IPv4 `connect(2)` in the cgroup it is attached to.
///
/// BPF: an `extern "C"` function `name` in section `cgroup/connect4`. Wasm: no export (the hook
/// has no userspace meaning); a record in the custom section `duet.kernel_only` makes
/// `duet build` refuse the `.wasm`. Host: the function itself, for `duet::testing::run_connect4`.
#[proc_macro_attribute]
pub fn connect4(attr: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(tt) = attr.into_iter().next() {
        return error(tt.span(), "#[duet::connect4] takes no arguments");
    }
    expand_program(item, Kind::Connect4).unwrap_or_else(|(span, msg)| error(span, &msg))
}

/// Declares a cgroup connect6 program (kernel only):
/// `#[duet::connect6] fn name(ctx: SockAddrContext) -> SockAddrAction { ... }`, the IPv6
/// counterpart of `#[duet::connect4]` (`dst_ip6`, `set_dst_ip6`).
///
/// BPF: an `extern "C"` function `name` in section `cgroup/connect6`. Wasm: no export, as for
/// `#[duet::connect4]`. Host: the function itself, for `duet::testing::run_connect4`.
#[proc_macro_attribute]
pub fn connect6(attr: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(tt) = attr.into_iter().next() {
        return error(tt.span(), "#[duet::connect6] takes no arguments");
    }
    expand_program(item, Kind::Connect6).unwrap_or_else(|(span, msg)| error(span, &msg))
}

/// Declares a sock_ops program (kernel only): `#[duet::sock_ops] fn name(ctx: SockOpsContext) { ... }`,
/// called on TCP socket events of the cgroup it is attached to; the BPF function returns 1.
///
/// BPF: an `extern "C"` function `name` in section `sockops`. Wasm: no export, as for
/// `#[duet::connect4]`. Host: the function itself, for `duet::testing::run_sock_ops`.
#[proc_macro_attribute]
pub fn sock_ops(attr: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(tt) = attr.into_iter().next() {
        return error(tt.span(), "#[duet::sock_ops] takes no arguments");
    }
    expand_program(item, Kind::SockOps).unwrap_or_else(|(span, msg)| error(span, &msg))
}

/// Declares an sk_msg program (kernel only):
/// `#[duet::sk_msg] fn name(msg: SkMsgContext) -> SkMsgAction { ... }`, run on every
/// `sendmsg(2)` of the sockets in the `SockHash` it is attached to; it may redirect the data to
/// another socket of the map (`SockHash::redirect_msg`).
///
/// BPF: an `extern "C"` function `name` in section `sk_msg`. Wasm: no export, as for
/// `#[duet::connect4]`. Host: the function itself, for `duet::testing::run_sk_msg`.
#[proc_macro_attribute]
pub fn sk_msg(attr: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(tt) = attr.into_iter().next() {
        return error(tt.span(), "#[duet::sk_msg] takes no arguments");
    }
    expand_program(item, Kind::SkMsg).unwrap_or_else(|(span, msg)| error(span, &msg))
}

/// Declares an sk_lookup program (kernel only):
/// `#[duet::sk_lookup] fn name(ctx: SkLookupContext) -> SkLookupAction { ... }`, run when a
/// packet arriving in the network namespace it is attached to looks for its socket (a TCP SYN, a
/// UDP datagram); it may choose a listening socket of a `SockMap` instead
/// (`SkLookupContext::assign`).
///
/// BPF: an `extern "C"` function `name` in section `sk_lookup` (one per object). Wasm: no export,
/// as for `#[duet::connect4]`. Host: the function itself, for `duet::testing::run_sk_lookup`.
#[proc_macro_attribute]
pub fn sk_lookup(attr: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(tt) = attr.into_iter().next() {
        return error(tt.span(), "#[duet::sk_lookup] takes no arguments");
    }
    expand_program(item, Kind::SkLookup).unwrap_or_else(|(span, msg)| error(span, &msg))
}

/// Declares a tracepoint program (kernel only):
/// `#[duet::tracepoint("sock/inet_sock_set_state")] fn name(ctx: TracepointContext) { ... }`,
/// run with the record of the tracepoint `<category>/<name>` (see
/// `/sys/kernel/tracing/events`); the BPF function returns 0.
///
/// BPF: an `extern "C"` function `name` in section `tracepoint/<category>/<name>`. Wasm: no
/// export, as for `#[duet::connect4]`. Host: the function itself, for
/// `duet::testing::run_tracepoint`.
#[proc_macro_attribute]
pub fn tracepoint(attr: TokenStream, item: TokenStream) -> TokenStream {
    let usage = "#[duet::tracepoint] takes the tracepoint as \"<category>/<name>\", e.g. \
                 #[duet::tracepoint(\"sock/inet_sock_set_state\")]";
    let mut tokens = attr.into_iter();
    let (Some(TokenTree::Literal(lit)), None) = (tokens.next(), tokens.next()) else {
        return error(Span::call_site(), usage);
    };
    let text = lit.to_string();
    let Some(path) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
        return error(lit.span(), usage);
    };
    let valid = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    match path.split_once('/') {
        Some((category, name)) if valid(category) && valid(name) => {}
        _ => return error(lit.span(), usage),
    }
    expand_program_in(item, Kind::Tracepoint, Some(format!("tracepoint/{path}")))
        .unwrap_or_else(|(span, msg)| error(span, &msg))
}

/// Declares an HTTP request filter:
/// `#[duet::http_request] fn name(req: HttpContext) -> HttpAction { ... }`.
///
/// BPF: an `extern "C"` function `name` in section `duet/http_request`. Wasm: the export
/// `duet_prog_http_request_<name>`. Host: the function itself, for
/// `duet::testing::run_http_request`.
#[proc_macro_attribute]
pub fn http_request(attr: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(tt) = attr.into_iter().next() {
        return error(tt.span(), "#[duet::http_request] takes no arguments");
    }
    expand_program(item, Kind::HttpRequest).unwrap_or_else(|(span, msg)| error(span, &msg))
}

/// Declares an HTTP response filter:
/// `#[duet::http_response] fn name(resp: HttpContext) -> HttpAction { ... }`.
///
/// BPF: an `extern "C"` function `name` in section `duet/http_response`. Wasm: the export
/// `duet_prog_http_response_<name>`. Host: the function itself, for
/// `duet::testing::run_http_response`.
#[proc_macro_attribute]
pub fn http_response(attr: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(tt) = attr.into_iter().next() {
        return error(tt.span(), "#[duet::http_response] takes no arguments");
    }
    expand_program(item, Kind::HttpResponse).unwrap_or_else(|(span, msg)| error(span, &msg))
}

/// Declares a route program: `#[duet::route] fn name(req: RouteContext) -> Route { ... }`.
///
/// BPF: an `extern "C"` function `name` in section `duet/route` returning the 64-bit encoding of
/// the `Route`. Wasm: the export `duet_prog_route_<name>`, returning `i64`. Host: the function
/// itself, for `duet::testing::run_route`.
#[proc_macro_attribute]
pub fn route(attr: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(tt) = attr.into_iter().next() {
        return error(tt.span(), "#[duet::route] takes no arguments");
    }
    expand_program(item, Kind::Route).unwrap_or_else(|(span, msg)| error(span, &msg))
}

/// Implements `duet::Pod` for a `#[repr(C)]` struct whose fields are all `Pod`, and checks at
/// compile time that it has no padding (its size is the sum of its fields' sizes).
#[proc_macro_derive(Pod)]
pub fn derive_pod(item: TokenStream) -> TokenStream {
    expand_pod(item).unwrap_or_else(|(span, msg)| error(span, &msg))
}

// === programs ===

#[derive(Clone, Copy)]
enum Kind {
    Xdp,
    Classifier,
    SocketFilter,
    CgroupSkbIngress,
    CgroupSkbEgress,
    Probe,
    Connect4,
    Connect6,
    SockOps,
    SkMsg,
    SkLookup,
    Tracepoint,
    HttpRequest,
    HttpResponse,
    Route,
}

/// How a program kind is exported.
struct Shape {
    /// The ELF section of the BPF function.
    section: &'static str,
    /// The `duet::__private` function that runs it in BPF, and the one in Wasm.
    entry: &'static str,
    wasm_entry: &'static str,
    /// The Wasm export's name without the program's name.
    wasm_prefix: &'static str,
    /// The return type of the BPF function and of the Wasm export.
    bpf_ret: &'static str,
    wasm_ret: &'static str,
}

impl Kind {
    fn shape(self) -> Shape {
        let (section, entry, wasm_prefix, ret64) = match self {
            Kind::Xdp => ("xdp", "xdp_entry", "duet_prog_xdp_", false),
            Kind::Classifier => ("classifier", "classifier_entry", "duet_prog_classifier_", false),
            Kind::SocketFilter => ("socket", "socket_filter_entry", "duet_prog_socket_filter_", false),
            Kind::CgroupSkbIngress => ("cgroup_skb/ingress", "cgroup_skb_entry", "duet_prog_cgroup_skb_", false),
            Kind::CgroupSkbEgress => ("cgroup_skb/egress", "cgroup_skb_entry", "duet_prog_cgroup_skb_", false),
            Kind::Probe => ("kprobe", "probe_entry", "duet_prog_probe_", false),
            Kind::Connect4 => ("cgroup/connect4", "connect4_entry", "", false),
            Kind::Connect6 => ("cgroup/connect6", "connect4_entry", "", false),
            Kind::SockOps => ("sockops", "sock_ops_entry", "", false),
            Kind::SkMsg => ("sk_msg", "sk_msg_entry", "", false),
            Kind::SkLookup => ("sk_lookup", "sk_lookup_entry", "", false),
            // The section names the tracepoint: `expand_program_in` is given it.
            Kind::Tracepoint => ("tracepoint", "tracepoint_entry", "", false),
            Kind::HttpRequest => ("duet/http_request", "http_entry", "duet_prog_http_request_", false),
            Kind::HttpResponse => ("duet/http_response", "http_entry", "duet_prog_http_response_", false),
            Kind::Route => ("duet/route", "route_entry", "duet_prog_route_", true),
        };
        let wasm_entry = match self {
            Kind::Xdp => "xdp_entry_wasm",
            Kind::Classifier => "classifier_entry_wasm",
            Kind::SocketFilter => "socket_filter_entry_wasm",
            Kind::CgroupSkbIngress | Kind::CgroupSkbEgress => "cgroup_skb_entry_wasm",
            Kind::Probe => "probe_entry_wasm",
            Kind::Connect4 | Kind::Connect6 | Kind::SockOps | Kind::SkMsg | Kind::SkLookup | Kind::Tracepoint => "",
            Kind::HttpRequest | Kind::HttpResponse => "http_entry_wasm",
            Kind::Route => "route_entry_wasm",
        };
        // The skb entries return their verdict zero-extended to 64 bits, so `r0` is the same in
        // every executor (the kernel reports only its low 32 bits).
        let skb =
            matches!(self, Kind::Classifier | Kind::SocketFilter | Kind::CgroupSkbIngress | Kind::CgroupSkbEgress);
        let (bpf_ret, wasm_ret) = if ret64 {
            ("i64", "i64")
        } else if skb {
            ("u64", "i32")
        } else {
            ("u32", "i32")
        };
        Shape { section, entry, wasm_entry, wasm_prefix, bpf_ret, wasm_ret }
    }
}

impl Kind {
    /// Whether the hook exists only in the kernel: no Wasm export, a `duet.kernel_only` record.
    fn is_kernel_only(self) -> bool {
        matches!(
            self,
            Kind::Connect4 | Kind::Connect6 | Kind::SockOps | Kind::SkMsg | Kind::SkLookup | Kind::Tracepoint
        )
    }
}

type Error = (Span, String);

fn expand_program(item: TokenStream, kind: Kind) -> Result<TokenStream, Error> {
    expand_program_in(item, kind, None)
}

/// [`expand_program`], with the ELF section given rather than the kind's (tracepoints).
fn expand_program_in(item: TokenStream, kind: Kind, section: Option<String>) -> Result<TokenStream, Error> {
    let tokens: Vec<TokenTree> = item.clone().into_iter().collect();
    let (name, vis) = fn_name_and_vis(&tokens)?;
    let name_str = name.to_string();
    let Shape { section: kind_section, entry, wasm_entry, wasm_prefix, bpf_ret, wasm_ret } = kind.shape();
    let section = section.as_deref().unwrap_or(kind_section);

    // BPF: the exported function carries the program's name (ELF symbol, BTF and DWARF agree),
    // and the user's function lives inside it under the same name.
    let bpf_body = concat_streams([
        item.clone(),
        parse(&format!("#[allow(unused_unsafe)] unsafe {{ ::duet::__private::{entry}(__duet_ctx, {name_str}) }}")),
    ]);
    let mut out = concat_streams([
        parse(&format!("#[cfg(target_arch = \"bpf\")] #[unsafe(no_mangle)] #[unsafe(link_section = \"{section}\")]")),
        vis,
        parse(&format!("extern \"C\" fn {name_str}(__duet_ctx: *mut ::core::ffi::c_void) -> {bpf_ret}")),
        TokenStream::from(TokenTree::Group(Group::new(Delimiter::Brace, bpf_body))),
    ]);
    // Wasm and host: the user's function as written; on the host it is called only by tests.
    if kind.is_kernel_only() {
        out.extend(parse("#[cfg(not(target_arch = \"bpf\"))] #[allow(dead_code)]"));
        out.extend(item);
        // Wasm: a record `duet build` finds, so it refuses the module instead of producing one
        // without this program (docs/ABI.md, kernel-only programs).
        let record = format!("{section} {name_str}\n");
        let lit = Literal::byte_string(record.as_bytes());
        out.extend(parse(&format!(
            "#[cfg(target_arch = \"wasm32\")] const _: () = {{ \
                #[used] #[unsafe(link_section = \"duet.kernel_only\")] \
                static RECORD: [u8; {}] = *{lit}; \
            }};",
            record.len()
        )));
        return Ok(out);
    }
    out.extend(parse(
        "#[cfg(not(target_arch = \"bpf\"))] \
         #[cfg_attr(not(target_arch = \"wasm32\"), allow(dead_code))]",
    ));
    out.extend(item);
    out.extend(parse(&format!(
        "#[cfg(target_arch = \"wasm32\")] const _: () = {{ \
            #[unsafe(export_name = \"{wasm_prefix}{name_str}\")] \
            extern \"C\" fn __duet_entry(data: i32, len: i32) -> {wasm_ret} {{ \
                ::duet::__private::{wasm_entry}(data, len, {name_str}) \
            }} \
        }};"
    )));
    Ok(out)
}

/// The function's name and visibility tokens; errors for anything but a plain `fn`.
fn fn_name_and_vis(tokens: &[TokenTree]) -> Result<(Ident, TokenStream), Error> {
    let mut i = skip_attrs(tokens, 0);
    let vis_start = i;
    i = skip_vis(tokens, i);
    let vis: TokenStream = tokens[vis_start..i].iter().cloned().collect();
    match tokens.get(i) {
        Some(TokenTree::Ident(id)) if id.to_string() == "fn" => {}
        Some(tt) => return Err((tt.span(), "expected a plain `fn` (not async, const, unsafe or extern)".into())),
        None => return Err((Span::call_site(), "expected a function".into())),
    }
    let Some(TokenTree::Ident(name)) = tokens.get(i + 1) else {
        return Err((Span::call_site(), "expected the function's name".into()));
    };
    if let Some(TokenTree::Punct(p)) = tokens.get(i + 2)
        && p.as_char() == '<'
    {
        return Err((p.span(), "a duet program cannot be generic".into()));
    }
    Ok((name.clone(), vis))
}

// === maps ===

fn expand_map(item: TokenStream) -> Result<TokenStream, Error> {
    let tokens: Vec<TokenTree> = item.into_iter().collect();
    let attrs_end = skip_attrs(&tokens, 0);
    let vis_end = skip_vis(&tokens, attrs_end);
    let mut i = vis_end;
    expect_ident(&tokens, i, "static", "expected `static NAME: Type = Type::with_max_entries(N, FLAGS);`")?;
    i += 1;
    if let Some(TokenTree::Ident(id)) = tokens.get(i)
        && id.to_string() == "mut"
    {
        return Err((id.span(), "a map static cannot be `mut`: maps are changed through their methods".into()));
    }
    let Some(TokenTree::Ident(name)) = tokens.get(i) else {
        return Err((Span::call_site(), "expected the map's name".into()));
    };
    let name_str = name.to_string();
    i += 1;
    expect_punct(&tokens, i, ':', "expected `: Type` after the map's name")?;
    i += 1;

    // The type runs to the `=` outside angle brackets.
    let ty_start = i;
    let mut depth = 0i32;
    while let Some(tt) = tokens.get(i) {
        if let TokenTree::Punct(p) = tt {
            match p.as_char() {
                '<' => depth += 1,
                '>' => depth -= 1,
                '=' if depth == 0 => break,
                _ => {}
            }
        }
        i += 1;
    }
    let ty = &tokens[ty_start..i];
    if ty.is_empty() || i >= tokens.len() {
        return Err((name.span(), "expected `: Type = Type::with_max_entries(N, FLAGS)`".into()));
    }
    i += 1;
    let init = &tokens[i..tokens.len().saturating_sub(1)];

    // `max_entries` and `flags` are the last call's two arguments.
    let Some(args) = init.iter().rev().find_map(|tt| match tt {
        TokenTree::Group(g) if g.delimiter() == Delimiter::Parenthesis => Some(g.clone()),
        _ => None,
    }) else {
        return Err((name.span(), "expected the initializer `Type::with_max_entries(N, FLAGS)`".into()));
    };
    let args = split_commas(args.stream());
    let [max_entries, flags] = <[TokenStream; 2]>::try_from(args)
        .map_err(|_| (name.span(), "expected two arguments: `with_max_entries(max_entries, flags)`".to_owned()))?;

    // `HashMap<K, V>` becomes `HashMap<K, V, { (N) as usize }, { (FLAGS) as usize }>`.
    let const_arg = |expr: TokenStream| {
        let inner = concat_streams([
            TokenStream::from(TokenTree::Group(Group::new(Delimiter::Parenthesis, expr))),
            parse("as usize"),
        ]);
        TokenStream::from(TokenTree::Group(Group::new(Delimiter::Brace, inner)))
    };
    let consts = concat_streams([const_arg(max_entries), punct(','), const_arg(flags)]);
    let full_ty: TokenStream = match ty.last() {
        Some(TokenTree::Punct(p)) if p.as_char() == '>' => {
            let head: TokenStream = ty[..ty.len() - 1].iter().cloned().collect();
            concat_streams([head, punct(','), consts, punct('>')])
        }
        _ => {
            let head: TokenStream = ty.iter().cloned().collect();
            concat_streams([head, punct('<'), consts, punct('>')])
        }
    };
    let qualified = concat_streams([punct('<'), full_ty.clone(), punct('>')]);
    let full_ty_text = full_ty.to_string();

    let id = NEXT_MAP_ID.fetch_add(1, Ordering::Relaxed);
    let attrs: TokenStream = tokens[..attrs_end].iter().cloned().collect();
    let vis: TokenStream = tokens[attrs_end..vis_end].iter().cloned().collect();
    let record_len = name_str.len() + 32;
    let record_name = Ident::new(&format!("__DUET_MAP_RECORD_{name_str}"), name.span());
    let name_lit = Literal::string(&name_str);
    let order_record = format!("{id} {name_str}\n");
    let order_lit = Literal::byte_string(order_record.as_bytes());

    Ok(concat_streams([
        attrs,
        parse(&format!(
            "#[cfg_attr(target_arch = \"bpf\", unsafe(link_section = \".maps\"))] \
             #[cfg_attr(target_arch = \"bpf\", unsafe(export_name = {name_lit}))] \
             #[cfg_attr(not(any(target_arch = \"bpf\", target_arch = \"wasm32\")), allow(dead_code))]"
        )),
        vis,
        parse("static"),
        TokenStream::from(TokenTree::Ident(name.clone())),
        punct(':'),
        full_ty.clone(),
        punct('='),
        qualified,
        parse(&format!("::__new({id}, {name_lit});")),
        parse(&format!(
            "#[cfg(target_arch = \"wasm32\")] #[used] #[unsafe(link_section = \"duet.maps.v1\")] \
             #[allow(non_upper_case_globals)] #[doc(hidden)] static {record_name}: [u8; {record_len}] = \
             ::duet::__private::map_record::<"
        )),
        full_ty,
        parse(&format!(", {record_len}>({id}, {name_lit});")),
        // Wasm: a kernel-only map type (a perf event array) leaves a `duet.kernel_only` record,
        // so `duet build` refuses the module; other maps leave an empty one.
        parse(&format!(
            "#[cfg(target_arch = \"wasm32\")] const _: () = {{ \
                const LEN: usize = ::duet::__private::kernel_only_map_len::<{ty}>({name_len}); \
                #[used] #[unsafe(link_section = \"duet.kernel_only\")] \
                static RECORD: [u8; LEN] = ::duet::__private::kernel_only_map_record::<{ty}, LEN>({name_lit}); \
            }};",
            ty = full_ty_text,
            name_len = name_str.len(),
        )),
        // BPF: the same id in a record of duet's own, because bpf-linker lays `.maps`, BTF and
        // debug info out by name; duet-object lists the maps by these ids. `#[used]` gives each
        // record a section of its own, and the BTF a DATASEC named after it, which the kernel
        // accepts only if the record is all of its section: hence one section name per map.
        parse(&format!(
            "#[cfg(target_arch = \"bpf\")] const _: () = {{ \
                #[used] #[unsafe(link_section = \"{MAP_ORDER_SECTION}.{id}\")] \
                static RECORD: [u8; {}] = *{order_lit}; \
            }};",
            order_record.len()
        )),
    ]))
}

// === derive(Pod) ===

fn expand_pod(item: TokenStream) -> Result<TokenStream, Error> {
    let tokens: Vec<TokenTree> = item.into_iter().collect();
    let attrs_end = skip_attrs(&tokens, 0);
    let repr_c = tokens[..attrs_end].iter().any(|tt| match tt {
        TokenTree::Group(g) => {
            let text = g.stream().to_string().replace(' ', "");
            text.starts_with("repr(") && (text.contains("(C") || text.contains(",C") || text.contains("transparent"))
        }
        _ => false,
    });
    let mut i = skip_vis(&tokens, attrs_end);
    expect_ident(&tokens, i, "struct", "#[derive(duet::Pod)] works on structs")?;
    i += 1;
    let Some(TokenTree::Ident(name)) = tokens.get(i) else {
        return Err((Span::call_site(), "expected the struct's name".into()));
    };
    if !repr_c {
        return Err((name.span(), "#[derive(duet::Pod)] needs #[repr(C)], so the layout is fixed".into()));
    }
    let fields = match tokens.get(i + 1) {
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => field_types(g.stream(), true),
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis => field_types(g.stream(), false),
        Some(TokenTree::Punct(p)) if p.as_char() == '<' => {
            return Err((p.span(), "#[derive(duet::Pod)] does not support generic structs".into()));
        }
        _ => return Err((name.span(), "#[derive(duet::Pod)] needs a struct with fields".into())),
    };

    let name_str = name.to_string();
    let mut checks = String::from("fn __duet_assert_pod<T: ::duet::Pod>() {}");
    let mut sum = String::from("0");
    for ty in &fields {
        checks.push_str(&format!("const _: fn() = __duet_assert_pod::<{ty}>;"));
        sum.push_str(&format!(" + ::core::mem::size_of::<{ty}>()"));
    }
    Ok(parse(&format!(
        "unsafe impl ::duet::Pod for {name_str} {{}} \
         const _: () = {{ {checks} \
            ::core::assert!(::core::mem::size_of::<{name_str}>() == {sum}, \
                \"{name_str} has padding bytes; add explicit padding fields so every byte is a field\"); \
         }};"
    )))
}

/// The types of a struct's fields, as source text.
fn field_types(fields: TokenStream, named: bool) -> Vec<String> {
    split_commas(fields)
        .into_iter()
        .filter_map(|field| {
            let tokens: Vec<TokenTree> = field.into_iter().collect();
            let mut i = skip_vis(&tokens, skip_attrs(&tokens, 0));
            if named {
                i += 2; // the name and the `:`
            }
            let ty: TokenStream = tokens.get(i..)?.iter().cloned().collect();
            (!ty.is_empty()).then(|| ty.to_string())
        })
        .collect()
}

// === token helpers ===

/// Skips `#[...]` attributes (doc comments arrive as `#[doc = "..."]`).
fn skip_attrs(tokens: &[TokenTree], mut i: usize) -> usize {
    while let (Some(TokenTree::Punct(p)), Some(TokenTree::Group(g))) = (tokens.get(i), tokens.get(i + 1)) {
        if p.as_char() != '#' || g.delimiter() != Delimiter::Bracket {
            break;
        }
        i += 2;
    }
    i
}

/// Skips `pub`, `pub(crate)`, `pub(in path)`.
fn skip_vis(tokens: &[TokenTree], mut i: usize) -> usize {
    if let Some(TokenTree::Ident(id)) = tokens.get(i)
        && id.to_string() == "pub"
    {
        i += 1;
        if let Some(TokenTree::Group(g)) = tokens.get(i)
            && g.delimiter() == Delimiter::Parenthesis
        {
            i += 1;
        }
    }
    i
}

fn expect_ident(tokens: &[TokenTree], i: usize, word: &str, msg: &str) -> Result<(), Error> {
    match tokens.get(i) {
        Some(TokenTree::Ident(id)) if id.to_string() == word => Ok(()),
        Some(tt) => Err((tt.span(), msg.into())),
        None => Err((Span::call_site(), msg.into())),
    }
}

fn expect_punct(tokens: &[TokenTree], i: usize, ch: char, msg: &str) -> Result<(), Error> {
    match tokens.get(i) {
        Some(TokenTree::Punct(p)) if p.as_char() == ch => Ok(()),
        Some(tt) => Err((tt.span(), msg.into())),
        None => Err((Span::call_site(), msg.into())),
    }
}

/// Splits a token stream at the commas outside angle brackets; drops a trailing empty part.
fn split_commas(stream: TokenStream) -> Vec<TokenStream> {
    let mut parts = vec![TokenStream::new()];
    let mut depth = 0i32;
    for tt in stream {
        if let TokenTree::Punct(p) = &tt {
            match p.as_char() {
                '<' => depth += 1,
                '>' if depth > 0 => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(TokenStream::new());
                    continue;
                }
                _ => {}
            }
        }
        if let Some(last) = parts.last_mut() {
            last.extend([tt]);
        }
    }
    if parts.last().is_some_and(TokenStream::is_empty) {
        parts.pop();
    }
    parts
}

fn punct(ch: char) -> TokenStream {
    TokenStream::from(TokenTree::Punct(Punct::new(ch, Spacing::Alone)))
}

fn concat_streams<const N: usize>(streams: [TokenStream; N]) -> TokenStream {
    streams.into_iter().collect()
}

/// Parses generated source text; the text is built here, so a failure is a bug in this crate,
/// reported as a compile error rather than a panic.
fn parse(src: &str) -> TokenStream {
    src.parse().unwrap_or_else(|_| error(Span::call_site(), &format!("duet-macros generated invalid code: {src}")))
}

fn error(span: Span, msg: &str) -> TokenStream {
    let mut lit = Literal::string(msg);
    lit.set_span(span);
    let mut group = Group::new(Delimiter::Brace, TokenTree::Literal(lit).into());
    group.set_span(span);
    let colon = |spacing| {
        let mut p = Punct::new(':', spacing);
        p.set_span(span);
        TokenTree::Punct(p)
    };
    let mut bang = Punct::new('!', Spacing::Alone);
    bang.set_span(span);
    [
        colon(Spacing::Joint),
        colon(Spacing::Alone),
        TokenTree::Ident(Ident::new("core", span)),
        colon(Spacing::Joint),
        colon(Spacing::Alone),
        TokenTree::Ident(Ident::new("compile_error", span)),
        TokenTree::Punct(bang),
        TokenTree::Group(group),
    ]
    .into_iter()
    .collect()
}
