//! duet-build: not written yet.
