//! Arbitrary bytes -> the code the kernel-facing commands (`duet load`, `duet test-run`,
//! `duet attach`, `duet list`) run on an object before the first `bpf()` syscall.
//!
//! 1. `duet_kernel::list_programs`: `duet_object::kernel_object` (section renaming, refusals),
//!    `boundary::check_object` (every `.BTF` string UTF-8), `boundary::refuse_userspace_only`
//!    (duet-object's parse of `duet/*` objects) and aya-obj's `Object::parse`, all inside
//!    duet-kernel's `boundary::contain`, which turns a panic into `KernelError::LoaderPanic`.
//! 2. When that succeeds, the pure steps aya 0.14's `EbpfLoader::load` runs next on the same
//!    prepared bytes: `patch_map_data`, `fixup_and_sanitize_btf` (with BTF features taken from
//!    the input, as if probed from some kernel), `relocate_maps` (fake fds), `relocate_calls`
//!    and `sanitize_functions`. In duet these run inside `contain` too.
//!
//! Checks: no panic in duet's own code, and no memory error. A panic inside aya or aya-obj is
//! what `contain` exists for (it reaches users as `LoaderPanic`), so it is allowed: the hook
//! stays quiet for it here, and `contain`'s `LoaderPanic` is accepted when its location is in
//! aya; a `LoaderPanic` located anywhere else (duet's code) fails the target.
#![no_main]

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use aya_obj::btf::BtfFeatures;
use duet_kernel::KernelError;
use libfuzzer_sys::fuzz_target;

static HOOK: Once = Once::new();

fn in_aya(location: &str) -> bool {
    location.contains("aya-obj") || location.contains("aya-0.")
}

fuzz_target!(|data: &[u8]| {
    HOOK.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.location().is_some_and(|l| in_aya(l.file())) {
                report(info);
            }
        }));
    });

    // Step 1: duet-kernel's own entry point (no syscall: it only reads the object).
    match duet_kernel::list_programs(data) {
        Ok(_) => {}
        Err(KernelError::LoaderPanic { during, message, location }) => {
            assert!(in_aya(&location), "panic in duet's code while {during}: {message} at {location}");
            return;
        }
        Err(_) => return,
    }

    // Step 2: what aya's loader does with the prepared bytes before it creates maps and loads.
    let prepared = duet_object::kernel_object(data);
    let bits = data.iter().fold(0u8, |acc, b| acc.rotate_left(1) ^ b);
    let bit = |n: u8| bits & (1 << n) != 0;
    let features = aya_obj::Features::new(
        bit(0),
        bit(1),
        bit(2),
        bit(3),
        bit(4),
        bit(5),
        bit(6),
        Some(BtfFeatures::new(bit(0), bit(1), bit(2), bit(3), bit(4), bit(5), bit(6), bit(7))),
    );
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let Ok(mut obj) = aya_obj::Object::parse(&prepared.bytes) else { return };
        if obj.patch_map_data(HashMap::new()).is_err() {
            return;
        }
        let btf_features = BtfFeatures::new(bit(0), bit(1), bit(2), bit(3), bit(4), bit(5), bit(6), bit(7));
        if let Ok(Some(btf)) = obj.fixup_and_sanitize_btf(&btf_features) {
            // aya hands these bytes to BPF_BTF_LOAD.
            let _ = btf.to_bytes();
        }
        let text_sections: HashSet<usize> = obj.functions.keys().map(|(section, _)| *section).collect();
        let maps: Vec<(String, aya_obj::Map)> = obj.maps.iter().map(|(n, m)| (n.clone(), m.clone())).collect();
        let fds = maps.iter().enumerate().map(|(i, (name, map))| (name.as_str(), 100 + i as i32, map));
        if obj.relocate_maps(fds, &text_sections).is_err() {
            return;
        }
        if obj.relocate_calls(&text_sections).is_err() {
            return;
        }
        obj.sanitize_functions(&features);
    }));
});
