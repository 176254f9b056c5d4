//! Helper functions, registered by id, as the kernel numbers them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::TrapKind;
use crate::memory::MemoryMap;

/// What a helper asks the engine to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelperOutcome {
    /// Continue with this value in `r0`.
    Return(u64),
    /// End the program now with this value in `r0` (the conformance suite's "unwind").
    Exit(u64),
}

/// An error a helper reports; the run ends with [`TrapKind::HelperFailed`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HelperError {
    /// A pointer argument does not point into readable or writable guest memory.
    #[error("argument {arg}: {trap}")]
    BadPointer {
        /// Argument number, 1-based (r1..r5).
        arg: u8,
        /// The failed access.
        #[source]
        trap: TrapKind,
    },
    /// Any other failure, in words.
    #[error("{0}")]
    Failed(String),
}

/// What a helper sees of the running program: checked access to guest memory.
pub struct HelperContext<'a> {
    pub(crate) memory: &'a mut MemoryMap,
}

impl fmt::Debug for HelperContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HelperContext").finish_non_exhaustive()
    }
}

impl HelperContext<'_> {
    /// Copies `buf.len()` guest bytes at `addr` into `buf`.
    pub fn read(&self, arg: u8, addr: u64, buf: &mut [u8]) -> Result<(), HelperError> {
        let p =
            self.memory.translate_read(addr, buf.len() as u64).map_err(|trap| HelperError::BadPointer { arg, trap })?;
        // SAFETY: `translate_read` proved `[p, p + len)` lies inside one live region that the
        // current run borrows; `buf` is a distinct Rust buffer, so the ranges cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copies `data` into guest memory at `addr`.
    pub fn write(&mut self, arg: u8, addr: u64, data: &[u8]) -> Result<(), HelperError> {
        let p = self
            .memory
            .translate_write(addr, data.len() as u64)
            .map_err(|trap| HelperError::BadPointer { arg, trap })?;
        // SAFETY: `translate_write` proved `[p, p + len)` lies inside one live writable region;
        // `data` is a Rust slice that does not alias guest memory handed out mutably elsewhere.
        unsafe { std::ptr::copy(data.as_ptr(), p, data.len()) };
        Ok(())
    }
}

/// A helper: takes `r1..=r5`, returns what to do next.
pub type Helper = Arc<dyn Fn(&mut HelperContext<'_>, [u64; 5]) -> Result<HelperOutcome, HelperError> + Send + Sync>;

/// Ids below this are looked up in a flat table (kernel helper ids are small).
const DENSE_IDS: u32 = 1024;

/// The helpers available to a program, by id.
#[derive(Clone, Default)]
pub struct Helpers {
    dense: Vec<Option<Helper>>,
    sparse: BTreeMap<u32, Helper>,
}

impl fmt::Debug for Helpers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<u32> = self.ids().collect();
        f.debug_struct("Helpers").field("ids", &ids).finish()
    }
}

impl Helpers {
    /// No helpers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (or replaces) helper `id`.
    pub fn register(
        &mut self,
        id: u32,
        f: impl Fn(&mut HelperContext<'_>, [u64; 5]) -> Result<HelperOutcome, HelperError> + Send + Sync + 'static,
    ) -> &mut Self {
        let helper: Helper = Arc::new(f);
        if id < DENSE_IDS {
            let i = id as usize;
            if self.dense.len() <= i {
                self.dense.resize(i + 1, None);
            }
            self.dense[i] = Some(helper);
        } else {
            self.sparse.insert(id, helper);
        }
        self
    }

    /// The helper registered as `id`.
    #[inline]
    pub fn get(&self, id: u32) -> Option<&Helper> {
        if id < DENSE_IDS { self.dense.get(id as usize).and_then(Option::as_ref) } else { self.sparse.get(&id) }
    }

    /// Registered ids, ascending.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.dense
            .iter()
            .enumerate()
            .filter(|(_, h)| h.is_some())
            .map(|(i, _)| i as u32)
            .chain(self.sparse.keys().copied())
    }
}

/// The conformance suite's helper 5: returns its argument; a zero argument ends the program
/// with `r0 = 0`.
pub fn unwind_helper(_: &mut HelperContext<'_>, args: [u64; 5]) -> Result<HelperOutcome, HelperError> {
    Ok(if args[0] == 0 { HelperOutcome::Exit(0) } else { HelperOutcome::Return(args[0]) })
}
