;; A firewall written by hand against the duet ABI v1 (docs/ABI.md), as the SDK would emit it:
;; drop IPv4 packets whose source address is a key of BLOCKED, count verdicts in VERDICTS, and
;; write the source address of every dropped packet to the EVENTS ring buffer.
;; Also used by duet-cli's tests and by the bench.
(module
  (import "duet" "map_lookup" (func $map_lookup (param i32 i32 i32) (result i32)))
  (import "duet" "map_add_u64" (func $map_add_u64 (param i32 i32 i32 i64) (result i64)))
  (import "duet" "ringbuf_output" (func $ringbuf_output (param i32 i32 i32 i64) (result i64)))

  ;; ids: 0 BLOCKED, 1 VERDICTS, 2 EVENTS
  (@custom "duet.maps" "[{\"name\":\"BLOCKED\",\"type\":1,\"key_size\":4,\"value_size\":1,\"max_entries\":1024,\"flags\":0},{\"name\":\"VERDICTS\",\"type\":2,\"key_size\":4,\"value_size\":8,\"max_entries\":5,\"flags\":0},{\"name\":\"EVENTS\",\"type\":27,\"key_size\":0,\"value_size\":0,\"max_entries\":4096,\"flags\":0}]")

  (memory (export "memory") 1)
  ;; Scratch at 0..64 (keys, values); the input buffer from 1024.
  (global $buffer i32 (i32.const 1024))

  (func (export "duet_abi_version") (result i32) (i32.const 1))

  ;; Grows memory so that `len` bytes fit at $buffer; returns -1 (out of bounds) if it cannot.
  (func (export "duet_buffer") (param $len i32) (result i32)
    (local $need i32)
    (local.set $need
      (i32.shr_u (i32.add (i32.add (global.get $buffer) (local.get $len)) (i32.const 65535)) (i32.const 16)))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $need) (memory.size))) (i32.const -1))
          (then (return (i32.const -1))))))
    (global.get $buffer))

  (func (export "duet_prog_xdp_firewall") (param $data i32) (param $len i32) (result i32)
    (local $verdict i32)
    (local.set $verdict (i32.const 2)) ;; XDP_PASS
    ;; Ethernet (14) + minimal IPv4 header (20), ethertype 0x0800.
    (if (i32.and
          (i32.ge_u (local.get $len) (i32.const 34))
          (i32.eq (i32.load16_u offset=12 (local.get $data)) (i32.const 0x0008)))
      (then
        ;; key = source address, as its bytes
        (i32.store (i32.const 0) (i32.load offset=26 (local.get $data)))
        (if (call $map_lookup (i32.const 0) (i32.const 0) (i32.const 8))
          (then
            (local.set $verdict (i32.const 1)) ;; XDP_DROP
            (drop (call $ringbuf_output (i32.const 2) (i32.const 0) (i32.const 4) (i64.const 0)))))))
    (i32.store (i32.const 16) (local.get $verdict))
    (drop (call $map_add_u64 (i32.const 1) (i32.const 16) (i32.const 0) (i64.const 1)))
    (local.get $verdict))
)
