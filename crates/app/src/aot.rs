//! Components compiled ahead of time, for executables that embed one and carry no compiler
//! (`duet package`, `duet-runner`): [`App::precompile`] (needs the `compiler` feature) and
//! [`App::from_precompiled`] (does not).
#![allow(unsafe_code, reason = "Component::deserialize is unsafe; one block, documented")]

use wasmtime::component::Component;

use crate::cache::CacheStatus;
use crate::{App, AppConfig, AppError, engine};

impl App {
    /// Loads the component `bytes` as [`App::from_bytes`] does (so it is checked exactly as the
    /// sidecar checks an app: the handler export and every import), and returns its compiled
    /// code for [`App::from_precompiled`] in a process without a compiler.
    #[cfg(feature = "compiler")]
    pub fn precompile(config: &AppConfig, bytes: &[u8]) -> Result<Vec<u8>, AppError> {
        let app = App::from_bytes(config, bytes, None)?;
        app.pre
            .instance_pre()
            .component()
            .serialize()
            .map_err(|e| AppError::Compile { path: config.wasm.clone(), detail: format!("{e:#}") })
    }

    /// Loads a component compiled ahead of time and pre-links it as [`App::from_bytes`] does.
    /// Needs no compiler. A component compiled by another wasmtime version or with other engine
    /// settings is refused with [`AppError::Precompiled`]. `config.wasm` only names the app.
    ///
    /// # Safety
    ///
    /// `code` must be what [`App::precompile`] returned, unaltered: wasmtime checks the header,
    /// version and engine settings of the bytes, but runs the machine code in them as it is.
    /// Bytes that travelled (a file, an executable's payload) must be checked against a digest
    /// taken when they were produced.
    pub unsafe fn from_precompiled(config: &AppConfig, code: &[u8]) -> Result<App, AppError> {
        config.validate()?;
        let engine = engine::new_engine(config)?;
        // SAFETY: the caller guarantees that `code` is `App::precompile`'s output, unaltered.
        // wasmtime itself checks the header, its version and every engine setting that affects
        // the code, and refuses a mismatch with an error.
        let component = unsafe { Component::deserialize(&engine, code) }
            .map_err(|e| AppError::Precompiled { path: config.wasm.clone(), detail: format!("{e:#}") })?;
        App::from_component(config, engine, &component, CacheStatus::Precompiled)
    }
}
