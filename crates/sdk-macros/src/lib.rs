//! duet-macros: not written yet.
