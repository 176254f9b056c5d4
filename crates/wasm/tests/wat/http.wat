;; HTTP programs of the duet ABI v2, written by hand: the Wasm twins of the eBPF programs in
;; tests/http.rs (`gate`, `stamp`, `route`), a request filter calling every import with good and
;; bad arguments (`errnos`), and an XDP program that calls an http import (which must answer
;; -EPERM outside an http run).
(module
  (import "duet" "http_field" (func $field (param i32 i32 i32) (result i64)))
  (import "duet" "http_header_get" (func $get (param i32 i32 i32 i32) (result i64)))
  (import "duet" "http_header_set" (func $set (param i32 i32 i32 i32) (result i64)))
  (import "duet" "http_header_add" (func $add (param i32 i32 i32 i32) (result i64)))
  (import "duet" "http_header_remove" (func $remove (param i32 i32) (result i64)))
  (import "duet" "http_respond" (func $respond (param i32 i32 i32) (result i64)))

  (memory (export "memory") 1)
  (data (i32.const 64) "X-Up")
  (data (i32.const 72) "v")
  (data (i32.const 80) "bad name")
  (data (i32.const 96) ":path")
  (data (i32.const 104) "/x")
  (data (i32.const 112) "Connection")
  (data (i32.const 128) "close")
  (data (i32.const 136) "x-a")
  (data (i32.const 144) "a\0d\0ab")
  (data (i32.const 152) "x-up")
  (data (i32.const 160) "X-LONG")
  (data (i32.const 168) "x-gone")
  (data (i32.const 176) "x-n")
  (data (i32.const 184) "1")
  (data (i32.const 192) "x-user")
  (data (i32.const 200) "who?")
  (data (i32.const 208) "x-seen")
  (data (i32.const 216) "x-h2")
  (data (i32.const 224) "x-debug")
  (data (i32.const 232) "retry-after")

  (func (export "duet_abi_version") (result i32) (i32.const 2))
  (func (export "duet_buffer") (param i32) (result i32) (i32.const 1024))

  ;; x-user (into 32 bytes at 256) absent: respond 401 "who?", return 1. Present: x-seen = its
  ;; first 32 bytes, x-h2: 1 on HTTP/2, remove x-debug, return 0.
  (func (export "duet_prog_http_request_gate") (param $ctx i32) (param $len i32) (result i32)
    (local $n i64)
    (local.set $n (call $get (i32.const 192) (i32.const 6) (i32.const 256) (i32.const 32)))
    (if (i64.lt_s (local.get $n) (i64.const 0))
      (then
        (drop (call $respond (i32.const 401) (i32.const 200) (i32.const 4)))
        (return (i32.const 1))))
    (if (i64.gt_u (local.get $n) (i64.const 32)) (then (local.set $n (i64.const 32))))
    (drop (call $set (i32.const 208) (i32.const 6) (i32.const 256) (i32.wrap_i64 (local.get $n))))
    (if (i32.eq (i32.load offset=20 (local.get $ctx)) (i32.const 20))
      (then (drop (call $add (i32.const 216) (i32.const 4) (i32.const 184) (i32.const 1)))))
    (drop (call $remove (i32.const 224) (i32.const 7)))
    (i32.const 0))

  ;; 418: return 1 without a response. Otherwise record a 299 response holding the context,
  ;; set retry-after: 1 on a 5xx, return 0.
  (func (export "duet_prog_http_response_stamp") (param $ctx i32) (param $len i32) (result i32)
    (local $status i32)
    (local.set $status (i32.load offset=4 (local.get $ctx)))
    (if (i32.eq (local.get $status) (i32.const 418)) (then (return (i32.const 1))))
    (drop (call $respond (i32.const 299) (local.get $ctx) (local.get $len)))
    (if (i32.ge_u (local.get $status) (i32.const 500))
      (then (drop (call $set (i32.const 232) (i32.const 11) (i32.const 184) (i32.const 1)))))
    (i32.const 0))

  ;; GET: cluster 0, the balancer chooses; POST: cluster 1 endpoint 0; otherwise decline.
  (func (export "duet_prog_route_route") (param $ctx i32) (param $len i32) (result i64)
    (local $c i32)
    (if (i64.lt_s (call $field (i32.const 0) (i32.const 300) (i32.const 8)) (i64.const 0))
      (then (return (i64.const -1))))
    (local.set $c (i32.load8_u (i32.const 300)))
    (if (i32.eq (local.get $c) (i32.const 0x47)) (then (return (i64.const 0xffffffff))))
    (if (i32.eq (local.get $c) (i32.const 0x50)) (then (return (i64.const 0x100000000))))
    (i64.const -1))

  ;; Every import with good and bad arguments; the 16 results (i64, at 512) are the body of a 201.
  (func $keep (param $i i32) (param $v i64)
    (i64.store (i32.add (i32.const 512) (i32.shl (local.get $i) (i32.const 3))) (local.get $v)))
  (func (export "duet_prog_http_request_errnos") (param $ctx i32) (param $len i32) (result i32)
    (local $i i32) (local $fails i64)
    (call $keep (i32.const 0) (call $set (i32.const 64) (i32.const 4) (i32.const 72) (i32.const 1)))
    (call $keep (i32.const 1) (call $set (i32.const 80) (i32.const 8) (i32.const 72) (i32.const 1)))
    (call $keep (i32.const 2) (call $set (i32.const 96) (i32.const 5) (i32.const 104) (i32.const 2)))
    (call $keep (i32.const 3) (call $add (i32.const 112) (i32.const 10) (i32.const 128) (i32.const 5)))
    (call $keep (i32.const 4) (call $set (i32.const 136) (i32.const 3) (i32.const 144) (i32.const 4)))
    (i64.store (i32.const 400) (i64.const -1))
    (call $keep (i32.const 5) (call $get (i32.const 152) (i32.const 4) (i32.const 400) (i32.const 8)))
    (call $keep (i32.const 6) (i64.load (i32.const 400)))
    (i64.store (i32.const 408) (i64.const -1))
    (call $keep (i32.const 7) (call $get (i32.const 160) (i32.const 6) (i32.const 408) (i32.const 4)))
    (call $keep (i32.const 8) (i64.load (i32.const 408)))
    (i64.store (i32.const 416) (i64.const -1))
    (call $keep (i32.const 9) (call $field (i32.const 99) (i32.const 416) (i32.const 8)))
    (call $keep (i32.const 10) (i64.load (i32.const 416)))
    (call $keep (i32.const 11) (call $field (i32.const 6) (i32.const 0) (i32.const 0)))
    (call $keep (i32.const 12) (call $field (i32.const 0) (i32.const 0) (i32.const 0)))
    (call $keep (i32.const 13) (call $remove (i32.const 168) (i32.const 6)))
    (call $keep (i32.const 14) (call $respond (i32.const 700) (i32.const 0) (i32.const 0)))
    (loop $more
      (if (i64.lt_s (call $add (i32.const 176) (i32.const 3) (i32.const 184) (i32.const 1)) (i64.const 0))
        (then (local.set $fails (i64.add (local.get $fails) (i64.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 40))))
    (call $keep (i32.const 15) (local.get $fails))
    (drop (call $respond (i32.const 201) (i32.const 512) (i32.const 128)))
    (i32.const 1))

  ;; An XDP program: the http imports answer -EPERM (-1) here; pass (2) if they all do.
  (func (export "duet_prog_xdp_outside") (param $d i32) (param $n i32) (result i32)
    (if (result i32)
      (i32.and
        (i64.eq (call $set (i32.const 64) (i32.const 4) (i32.const 72) (i32.const 1)) (i64.const -1))
        (i64.eq (call $field (i32.const 0) (i32.const 0) (i32.const 0)) (i64.const -1)))
      (then (i32.const 2))
      (else (i32.const 1))))

  ;; A buffer past the end of memory: a fault, before the exchange is touched.
  (func (export "duet_prog_http_request_wild") (param $ctx i32) (param $len i32) (result i32)
    (drop (call $set (i32.const 64) (i32.const 4) (i32.const 65530) (i32.const 64)))
    (i32.const 0))
)
