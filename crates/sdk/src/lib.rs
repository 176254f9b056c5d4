//! duet: not written yet.
