//! Programs attached for the life of a value: what a process (the sidecar's capture) attaches
//! while it runs, and nothing after it.
//!
//! [`ScopedAttachment::attach`] loads one object once, so its programs share its maps (a
//! `connect4` program and a `sock_ops` program passing records through a map), attaches the
//! programs named to cgroup (and network namespace) hooks through BPF links the value holds, and pins the maps under a
//! directory of its own for inspection (`bpftool map dump pinned <dir>/maps/<name>`). The links
//! are deliberately not pinned: a link lives as long as its file descriptor, so when the process
//! ends, however it ends, the kernel detaches the programs; a crashed sidecar never leaves a
//! cgroup redirected to a listener that is gone. Only the map pins can outlive a crash, and the
//! next `attach` with the same directory removes them first. Dropping the value (or
//! [`ScopedAttachment::detach`]) detaches every program and removes the directory.
//!
//! `sk_msg` programs attach to a sockhash or sockmap of the object rather than to a cgroup
//! ([`ScopedRequest::sk_msg`]), through a `BPF_LINK_CREATE` link (Linux 6.10+) held the same
//! way, so they too go with the process.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use aya::programs::ProgramError;
use aya::programs::links::FdLink;
use aya::{Ebpf, EbpfLoader};

use crate::deploy::{self, Hook};
use crate::error::{Errno, KernelError};
use crate::{access, boundary, bpffs, maps, run, sys};

/// What [`ScopedAttachment::attach`] loads and where it attaches it.
#[derive(Clone, Debug)]
pub struct ScopedRequest<'a> {
    /// The ELF `.bpf.o` bytes.
    pub object: &'a [u8],
    /// Each program to attach and its hook ([`Hook::CgroupConnect4`], [`Hook::CgroupConnect6`],
    /// [`Hook::SockOps`] or [`Hook::SkLookup`]).
    pub programs: Vec<(&'a str, Hook)>,
    /// Each `sk_msg` program to attach and the sockhash (or sockmap) of the object it runs for.
    pub sk_msg: Vec<(&'a str, &'a str)>,
    /// The directory (in bpffs) that holds the map pins; emptied first.
    pub pin_dir: &'a Path,
    /// Entries written before any program is attached: `(map, key, value)`.
    pub seed: Vec<(&'a str, Vec<u8>, Vec<u8>)>,
}

/// Programs attached while this value lives; see the module documentation.
pub struct ScopedAttachment {
    // Field order is drop order: the links go first (detaching the programs), then the object.
    links: Vec<FdLink>,
    msg_links: Vec<OwnedFd>,
    ebpf: Ebpf,
    pin_dir: PathBuf,
}

impl std::fmt::Debug for ScopedAttachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedAttachment")
            .field("links", &self.links.len())
            .field("sk_msg_links", &self.msg_links.len())
            .field("pin_dir", &self.pin_dir)
            .finish_non_exhaustive()
    }
}

impl ScopedAttachment {
    /// Loads the object, seeds its maps, attaches the programs and pins the maps. On any error
    /// nothing stays attached or pinned.
    pub fn attach(req: &ScopedRequest<'_>) -> Result<ScopedAttachment, KernelError> {
        boundary::contain("loading and attaching the programs", || attach_contained(req))
    }

    /// The value of `key` in map `map`, or `None` when it has no entry.
    pub fn lookup(&self, map: &str, key: &[u8]) -> Result<Option<Vec<u8>>, KernelError> {
        let (data, value_size) = self.map_data(map)?;
        let mut value = vec![0; value_size];
        match sys::map_lookup(data.fd().as_fd(), key, &mut value) {
            Ok(()) => Ok(Some(value)),
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(err) => Err(KernelError::MapAccess { map: map.to_owned(), errno: Errno::of(&err) }),
        }
    }

    /// Sets `key` to `value` in map `map` (`BPF_ANY`). For a sockhash the value is a socket's
    /// file descriptor (4 bytes, native order), which files that socket.
    pub fn update(&self, map: &str, key: &[u8], value: &[u8]) -> Result<(), KernelError> {
        let (data, _) = self.map_data(map)?;
        sys::map_update(data.fd().as_fd(), key, value)
            .map_err(|err| KernelError::MapAccess { map: map.to_owned(), errno: Errno::of(&err) })
    }

    /// Removes `key` from map `map`; an absent key is not an error.
    pub fn remove(&self, map: &str, key: &[u8]) -> Result<(), KernelError> {
        let (data, _) = self.map_data(map)?;
        match sys::map_delete(data.fd().as_fd(), key) {
            Ok(()) => Ok(()),
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            Err(err) => Err(KernelError::MapAccess { map: map.to_owned(), errno: Errno::of(&err) }),
        }
    }

    /// The directory of the map pins.
    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    /// Detaches every program and removes the pins.
    pub fn detach(self) -> Result<(), KernelError> {
        let pin_dir = self.pin_dir.clone();
        drop(self);
        match std::fs::remove_dir_all(&pin_dir) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(deploy::pin_io("remove", &pin_dir, source)),
        }
    }

    fn map_data(&self, map: &str) -> Result<(&aya::maps::MapData, usize), KernelError> {
        let found = self.ebpf.map(map).ok_or_else(|| KernelError::NoSuchMap {
            what: format!("no map `{map}`"),
            available: self.ebpf.maps().map(|(name, _)| name.to_owned()).collect(),
        })?;
        let (data, _) = maps::data_and_kind(found);
        let info = data.info().map_err(|_| KernelError::MapAccess { map: map.to_owned(), errno: Errno(libc::EIO) })?;
        Ok((data, info.value_size() as usize))
    }
}

impl Drop for ScopedAttachment {
    fn drop(&mut self) {
        // The links close with the fields; the pins would keep the maps alive.
        let _ = std::fs::remove_dir_all(&self.pin_dir);
    }
}

fn attach_contained(req: &ScopedRequest<'_>) -> Result<ScopedAttachment, KernelError> {
    access::check_access()?;
    bpffs::ensure_for_pinning(req.pin_dir)?;
    match std::fs::remove_dir_all(req.pin_dir) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(deploy::pin_io("remove", req.pin_dir, source)),
    }
    let maps_dir = req.pin_dir.join("maps");
    std::fs::create_dir_all(&maps_dir).map_err(|source| deploy::pin_io("create", &maps_dir, source))?;
    // From here on, a failure drops `cleanup`, which removes the directory again.
    let cleanup = RemoveOnError(req.pin_dir);

    let prepared = run::prepare(req.object, None)?;
    let object: &[u8] = &prepared.bytes;
    let mut picked = Vec::new();
    for (name, hook) in &req.programs {
        if let Some(r) = prepared.refused.iter().find(|r| r.name == *name) {
            return Err(KernelError::ProgramRefused { program: r.name.clone(), reason: r.reason.clone() });
        }
        let (name, section) = deploy::pick_program(object, Some(name), hook)?;
        picked.push((name, section, hook, deploy::open_target(hook)?));
    }

    let mut loader = EbpfLoader::new();
    loader.allow_unsupported_maps();
    let mut ebpf = loader.load(object).map_err(run::object_error)?;
    for (map, key, value) in &req.seed {
        let found = ebpf.map(map).ok_or_else(|| KernelError::NoSuchMap {
            what: format!("no map `{map}` to seed"),
            available: ebpf.maps().map(|(name, _)| name.to_owned()).collect(),
        })?;
        maps::write(map, found, key, value, 1)?;
    }
    let mut links = Vec::new();
    for (name, section, hook, cgroup) in &picked {
        let program = ebpf
            .program_mut(name)
            .ok_or_else(|| KernelError::ProgramNotFound { program: name.clone(), available: vec![] })?;
        run::load(name, program, true)?;
        links.push(deploy::attach_link(name, program, section, hook, None, cgroup.as_ref())?);
    }
    let mut msg_links = Vec::new();
    for (name, map) in &req.sk_msg {
        msg_links.push(attach_sk_msg(&mut ebpf, name, map)?);
    }
    deploy::pin_maps(&ebpf, &maps_dir)?;
    std::mem::forget(cleanup);
    Ok(ScopedAttachment { links, msg_links, ebpf, pin_dir: req.pin_dir.to_owned() })
}

/// Loads the `sk_msg` program `name` and links it to the sockhash (or sockmap) `map`.
fn attach_sk_msg(ebpf: &mut Ebpf, name: &str, map: &str) -> Result<OwnedFd, KernelError> {
    let hook = format!("sk_msg on map {map}");
    let program = ebpf
        .program_mut(name)
        .ok_or_else(|| KernelError::ProgramNotFound { program: name.to_owned(), available: vec![] })?;
    if !matches!(program, aya::programs::Program::SkMsg(_)) {
        return Err(KernelError::HookMismatch {
            program: name.to_owned(),
            kind: format!("{:?}", program.prog_type()).to_lowercase(),
            hook,
            hint: "an sk_msg program is in section `sk_msg` (`#[duet::sk_msg]`)".to_owned(),
        });
    }
    run::load(name, program, true)?;
    let prog_fd =
        program.fd().and_then(|fd| fd.as_fd().try_clone_to_owned().map_err(ProgramError::from)).map_err(|source| {
            KernelError::AttachOther { program: name.to_owned(), hook: hook.clone(), source: Box::new(source) }
        })?;
    let found = ebpf.map(map).ok_or_else(|| KernelError::NoSuchMap {
        what: format!("no map `{map}` for sk_msg program `{name}`"),
        available: ebpf.maps().map(|(n, _)| n.to_owned()).collect(),
    })?;
    let (data, _) = maps::data_and_kind(found);
    sys::link_create(prog_fd.as_fd(), data.fd().as_fd(), sys::BPF_SK_MSG_VERDICT).map_err(|err| {
        let errno = Errno::of(&err);
        let hint = match err.raw_os_error() {
            Some(libc::EINVAL) => format!("; `{map}` must be a sockhash or sockmap, and sk_msg links need Linux 6.10+"),
            _ => String::new(),
        };
        KernelError::Attach { program: name.to_owned(), hook, errno, hint }
    })
}

/// Removes a directory when dropped (on the error paths of [`attach_contained`]).
struct RemoveOnError<'a>(&'a Path);

impl Drop for RemoveOnError<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0);
    }
}
