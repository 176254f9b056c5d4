//! duet-verifier: not written yet.
