//! Modules compiled ahead of time, for executables that embed one and carry no compiler
//! (`duet package`, `duet-runner`): [`WasmModule::precompile`] (needs the `compiler` feature)
//! and [`WasmModule::load_precompiled`] (does not).
#![allow(unsafe_code, reason = "Module::deserialize is unsafe; one block, documented")]

use std::path::Path;

use duet_maps::MapSpec;
use wasmtime::{Engine, Module};

use crate::{CacheStatus, WasmError, WasmModule, WasmOptions, manifest};

/// A duet module compiled ahead of time by [`WasmModule::precompile`].
#[derive(Clone, PartialEq, Eq)]
pub struct Precompiled {
    /// wasmtime's serialized module, compiled with duet-wasm's engine settings.
    pub code: Vec<u8>,
    /// The payload of the module's `duet.maps` section (the JSON of docs/ABI.md), which compiled
    /// code does not keep; `None` when the module declares no maps.
    pub maps_manifest: Option<Vec<u8>>,
}

impl std::fmt::Debug for Precompiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Precompiled")
            .field("code_bytes", &self.code.len())
            .field("maps_manifest_bytes", &self.maps_manifest.as_ref().map(Vec::len))
            .finish()
    }
}

/// What [`WasmModule`]'s loader compiles or deserializes.
#[derive(Clone, Copy)]
pub(crate) enum Code<'a> {
    /// A `.wasm` file's bytes.
    Wasm(&'a [u8]),
    /// Code [`WasmModule::precompile`] produced; constructed only by the unsafe
    /// [`WasmModule::load_precompiled`], whose caller vouches for it.
    Precompiled(&'a Precompiled),
}

impl Code<'_> {
    /// The module's map specs and compiled module.
    pub(crate) fn load(
        self,
        engine: &Engine,
        cache_dir: Option<&Path>,
    ) -> Result<(Vec<MapSpec>, Module, CacheStatus), WasmError> {
        match self {
            Code::Wasm(wasm) => {
                let specs = manifest::map_specs(wasm)?;
                let (module, cache) = compile(engine, wasm, cache_dir)?;
                Ok((specs, module, cache))
            }
            Code::Precompiled(precompiled) => {
                let specs = match &precompiled.maps_manifest {
                    Some(payload) => manifest::parse(payload)?,
                    None => Vec::new(),
                };
                // SAFETY: `Code::Precompiled` is only made by `WasmModule::load_precompiled`,
                // whose caller guarantees that these bytes are `WasmModule::precompile`'s output,
                // unaltered. wasmtime itself checks the header, its version and every engine
                // setting that affects the code, and refuses a mismatch with an error.
                let module = unsafe { Module::deserialize(engine, &precompiled.code) }
                    .map_err(|e| WasmError::Precompiled { reason: format!("{e:#}") })?;
                Ok((specs, module, CacheStatus::Precompiled))
            }
        }
    }
}

#[cfg(feature = "compiler")]
fn compile(engine: &Engine, wasm: &[u8], cache_dir: Option<&Path>) -> Result<(Module, CacheStatus), WasmError> {
    crate::cache::load_or_compile(engine, wasm, cache_dir)
}

#[cfg(not(feature = "compiler"))]
fn compile(_: &Engine, _: &[u8], _: Option<&Path>) -> Result<(Module, CacheStatus), WasmError> {
    Err(WasmError::Compile {
        source: "this build of duet-wasm has no compiler (its `compiler` feature is off): it runs only modules \
                 compiled ahead of time (WasmModule::load_precompiled)"
            .into(),
    })
}

// === impl WasmModule ===

impl WasmModule {
    /// Loads `wasm` as [`WasmModule::load`] does (so it is checked exactly as a module `duet run`
    /// accepts), and returns its compiled code with its map manifest, for
    /// [`WasmModule::load_precompiled`] in a process without a compiler.
    #[cfg(feature = "compiler")]
    pub fn precompile(wasm: &[u8], options: &WasmOptions) -> Result<Precompiled, WasmError> {
        let module = WasmModule::load(wasm, options)?;
        let code = module.inner.pre.module().serialize().map_err(|e| WasmError::Compile { source: e.into() })?;
        let maps_manifest = manifest::maps_section(wasm)?.map(<[u8]>::to_vec);
        Ok(Precompiled { code, maps_manifest })
    }

    /// Loads a module compiled ahead of time, creates its maps, and checks it as
    /// [`WasmModule::load`] does. Needs no compiler. A module compiled by another wasmtime
    /// version or with other engine settings is refused with [`WasmError::Precompiled`].
    ///
    /// # Safety
    ///
    /// `precompiled.code` must be what [`WasmModule::precompile`] returned, unaltered: wasmtime
    /// checks the header, version and engine settings of the bytes, but runs the machine code in
    /// them as it is. Bytes that travelled (a file, an executable's payload) must be checked
    /// against a digest taken when they were produced.
    pub unsafe fn load_precompiled(precompiled: &Precompiled, options: &WasmOptions) -> Result<Self, WasmError> {
        Self::load_code(Code::Precompiled(precompiled), options, std::iter::empty::<(String, _)>())
    }
}
