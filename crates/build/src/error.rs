//! What can go wrong while building, each with what to do about it.

use std::path::PathBuf;

/// Why a build (or a toolchain setup step) failed. The messages name the fix when there is one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A command ran and failed.
    #[error("`{command}` failed ({status}){hint}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What to try, starting with "; " (or empty).
        hint: String,
    },
    /// The program crate did not compile: the compiler's messages (printed above, or in
    /// `messages` when the build was quiet) say why.
    #[error("{krate} did not compile for {target}: {errors} error{plural} (the compiler's messages are above){messages}", plural = if *errors == 1 { "" } else { "s" })]
    Compile {
        /// The crate's name.
        krate: String,
        /// The target.
        target: String,
        /// How many errors the compiler reported.
        errors: usize,
        /// The rendered errors when the build was quiet (starting with a newline), else empty.
        messages: String,
    },
    /// cargo could not reach the network (to update the crates.io index or download a crate);
    /// `offline` says why building offline from its local cache did not work either.
    #[error("{}", network_message(cause, offline.as_deref()))]
    Network {
        /// What cargo said about the network (curl's message).
        cause: String,
        /// Why the offline build failed, once one was tried.
        offline: Option<String>,
    },
    /// A command could not be started.
    #[error("cannot start `{command}`: {source}{hint}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
        /// What to try, starting with "; " (or empty).
        hint: String,
    },
    /// A file or directory could not be read, written or created.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done ("cannot read", ...).
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The directory is not a program crate duet can build.
    #[error("{0}")]
    Crate(String),
    /// The toolchain cannot build programs and duet cannot fix that itself.
    #[error("{0}")]
    Toolchain(String),
    /// A command's output was not what duet expects from it.
    #[error("{0}")]
    Output(String),
    /// Only a `.wasm` was asked for, but the crate has programs for hooks only the kernel has.
    #[error("{krate} has programs only the kernel can run ({}): a .wasm of it would not contain them; build its .bpf.o (`duet build` without --wasm-only)", programs.join(", "))]
    KernelOnly {
        /// The crate's name.
        krate: String,
        /// `name (section)` of each kernel-only program.
        programs: Vec<String>,
    },
    /// The `.wasm` cargo produced is not a module duet can finish (manifest records, exports).
    #[error("{}: {message}", path.display())]
    Wasm {
        /// The module.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

fn network_message(cause: &str, offline: Option<&str>) -> String {
    let mut text = format!("cargo could not reach the network ({cause})");
    if let Some(offline) = offline {
        text.push_str(&format!(
            ", and the offline build from its local cache failed too (connect once, or run `cargo fetch` in \
             the crate while online, and builds work offline after that): {offline}"
        ));
    }
    text
}

impl BuildError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BuildError {
        let path = path.into();
        move |source| BuildError::Io { action, path, source }
    }
}
