;; Small programs that exercise each import of the duet ABI v1 and each limit of the host.
;; Probes return the raw result of one call, so the tests can check errno values.
(module
  (import "duet" "map_lookup" (func $map_lookup (param i32 i32 i32) (result i32)))
  (import "duet" "map_update" (func $map_update (param i32 i32 i32 i64) (result i64)))
  (import "duet" "map_delete" (func $map_delete (param i32 i32) (result i64)))
  (import "duet" "map_add_u64" (func $map_add_u64 (param i32 i32 i32 i64) (result i64)))
  (import "duet" "ktime_get_ns" (func $ktime (result i64)))
  (import "duet" "get_prandom_u32" (func $random (result i32)))
  (import "duet" "get_smp_processor_id" (func $cpu (result i32)))
  (import "duet" "trace" (func $trace (param i32 i32)))
  (import "duet" "ringbuf_output" (func $ringbuf_output (param i32 i32 i32 i64) (result i64)))

  ;; ids: 0 H (hash 4->8), 1 A (array 4->8, 4 entries), 2 P (percpu_array 4->8), 3 R (ringbuf)
  (@custom "duet.maps" "[{\"name\":\"H\",\"type\":1,\"key_size\":4,\"value_size\":8,\"max_entries\":2,\"flags\":0},{\"name\":\"A\",\"type\":2,\"key_size\":4,\"value_size\":8,\"max_entries\":4,\"flags\":0},{\"name\":\"P\",\"type\":6,\"key_size\":4,\"value_size\":8,\"max_entries\":1,\"flags\":0},{\"name\":\"R\",\"type\":27,\"key_size\":0,\"value_size\":0,\"max_entries\":4096,\"flags\":0}]")

  (memory (export "memory") 1)
  (data (i32.const 64) "hello from wasm\n")

  (func (export "duet_abi_version") (result i32) (i32.const 1))
  (func (export "duet_buffer") (param i32) (result i32) (i32.const 1024))

  ;; The record is (key: u32, value: u64): update H with flags from the record's byte 12.
  (func (export "duet_prog_probe_update") (param $d i32) (param $n i32) (result i32)
    (i32.wrap_i64 (call $map_update (i32.const 0) (local.get $d) (i32.add (local.get $d) (i32.const 4))
      (i64.load8_u offset=12 (local.get $d)))))
  ;; The record is a u32 key of H: look it up, copy the value to byte 32, return found.
  (func (export "duet_prog_probe_lookup") (param $d i32) (param $n i32) (result i32)
    (call $map_lookup (i32.const 0) (local.get $d) (i32.const 32)))
  (func (export "duet_prog_probe_delete") (param $d i32) (param $n i32) (result i32)
    (i32.wrap_i64 (call $map_delete (i32.const 0) (local.get $d))))
  (func (export "duet_prog_probe_delete_array") (param $d i32) (param $n i32) (result i32)
    (i32.wrap_i64 (call $map_delete (i32.const 1) (local.get $d))))
  ;; The record is (map id: u32, key: u32, offset: u32): add 5.
  (func (export "duet_prog_probe_add") (param $d i32) (param $n i32) (result i32)
    (i32.wrap_i64 (call $map_add_u64 (i32.load (local.get $d)) (i32.add (local.get $d) (i32.const 4))
      (i32.load offset=8 (local.get $d)) (i64.const 5))))
  ;; Adds 1 to this CPU's slot of P[0].
  (func (export "duet_prog_probe_percpu") (param $d i32) (param $n i32) (result i32)
    (i32.store (i32.const 0) (i32.const 0))
    (i32.wrap_i64 (call $map_add_u64 (i32.const 2) (i32.const 0) (i32.const 0) (i64.const 1))))
  ;; Writes ktime to A[0], random to A[1], cpu to A[2].
  (func (export "duet_prog_probe_env") (param $d i32) (param $n i32) (result i32)
    (i32.store (i32.const 0) (i32.const 0))
    (i64.store (i32.const 8) (call $ktime))
    (drop (call $map_update (i32.const 1) (i32.const 0) (i32.const 8) (i64.const 0)))
    (i32.store (i32.const 0) (i32.const 1))
    (i64.store (i32.const 8) (i64.extend_i32_u (call $random)))
    (drop (call $map_update (i32.const 1) (i32.const 0) (i32.const 8) (i64.const 0)))
    (i32.store (i32.const 0) (i32.const 2))
    (i64.store (i32.const 8) (i64.extend_i32_u (call $cpu)))
    (drop (call $map_update (i32.const 1) (i32.const 0) (i32.const 8) (i64.const 0)))
    (i32.const 0))
  ;; Writes the record to R with flags from nothing (0), and traces a line.
  (func (export "duet_prog_probe_emit") (param $d i32) (param $n i32) (result i32)
    (call $trace (i32.const 64) (i32.const 16))
    (i32.wrap_i64 (call $ringbuf_output (i32.const 3) (local.get $d) (local.get $n) (i64.const 0))))
  (func (export "duet_prog_probe_emit_bad_flags") (param $d i32) (param $n i32) (result i32)
    (i32.wrap_i64 (call $ringbuf_output (i32.const 3) (local.get $d) (local.get $n) (i64.const 4))))

  ;; XDP: swap the Ethernet addresses and send the packet back out.
  (func (export "duet_prog_xdp_reflect") (param $d i32) (param $n i32) (result i32)
    (local $a i64) (local $b i64)
    (if (i32.lt_u (local.get $n) (i32.const 14)) (then (return (i32.const 1))))
    (local.set $a (i64.load (local.get $d)))          ;; dst[0..6] src[0..2]
    (local.set $b (i64.load offset=4 (local.get $d))) ;; dst[4..6] src[0..6]
    (i32.store (local.get $d) (i32.wrap_i64 (i64.shr_u (local.get $b) (i64.const 16))))
    (i32.store16 offset=4 (local.get $d) (i32.wrap_i64 (i64.shr_u (local.get $b) (i64.const 48))))
    (i32.store16 offset=6 (local.get $d) (i32.wrap_i64 (local.get $a)))
    (i32.store offset=8 (local.get $d) (i32.wrap_i64 (i64.shr_u (local.get $a) (i64.const 16))))
    (i32.const 3))

  ;; XDP: looks up the u32 key at packet byte 0 in H and writes the value over bytes 4..12.
  (func (export "duet_prog_xdp_lookup_into_packet") (param $d i32) (param $n i32) (result i32)
    (call $map_lookup (i32.const 0) (local.get $d) (i32.add (local.get $d) (i32.const 4))))

  ;; Faults and limits.
  (func (export "duet_prog_xdp_spin") (param i32 i32) (result i32)
    (loop $forever (br $forever))
    (unreachable))
  (func (export "duet_prog_xdp_oob_key") (param i32 i32) (result i32)
    (call $map_lookup (i32.const 0) (i32.const 65534) (i32.const 0)))
  (func (export "duet_prog_xdp_bad_map") (param i32 i32) (result i32)
    (call $map_lookup (i32.const 9) (i32.const 0) (i32.const 0)))
  (func (export "duet_prog_xdp_lookup_ringbuf") (param i32 i32) (result i32)
    (call $map_lookup (i32.const 3) (i32.const 0) (i32.const 0)))
  ;; Traps when the packet is empty, passes otherwise.
  (func (export "duet_prog_xdp_crash_on_empty") (param $d i32) (param $n i32) (result i32)
    (if (i32.eqz (local.get $n)) (then (unreachable)))
    (i32.const 2))
  ;; Grows memory one page at a time until it cannot, and returns the size in pages.
  (func (export "duet_prog_probe_hog") (param i32 i32) (result i32)
    (block $full (loop $more
      (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
      (br $more)))
    (memory.size))
)
