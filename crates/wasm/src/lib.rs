//! duet-wasm: not written yet.
