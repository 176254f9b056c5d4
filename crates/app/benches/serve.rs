//! The cost of one request through `duet_app::App`, in process and without the network:
//! `examples/apps/hello` (built without its `kv` feature, the artifact `duet mesh bench-app`
//! measures) answering `GET /`, one request at a time (or K, see below) on a current-thread
//! runtime, the response body read whole. Reports, per request, the wall time of the whole
//! `serve` + body and the part spent instantiating (`AppStats`), as the median of several rounds.
//!
//! Run with `cargo bench -p duet-app --bench serve`. `DUET_APP_BENCH_CONCURRENCY=K` has K clients
//! send their share of the requests at once (default 1). `DUET_APP_BENCH_SECS=N` instead serves
//! requests in a loop for N seconds (for `perf record -e cpu-clock --call-graph dwarf`), printing
//! the same numbers at the end. Besides wall time it reports the serving thread's CPU time
//! (`getrusage`), steadier than wall time on a shared machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use duet_app::{App, AppConfig};
use http_body_util::{BodyExt, Empty};

const ROUNDS: usize = 7;
const PER_ROUND: u32 = 2000;

/// One `GET /`, its answer checked and its body read.
async fn get(app: &App) {
    let req = http::Request::get("http://app.local/").body(Empty::<Bytes>::new()).expect("request");
    let response = app.serve(req).await;
    assert_eq!(response.status(), 200, "GET / answered {}", response.status());
    let body = response.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(&body[..], br#"{"app":"hello","hello":"duet"}"#);
}

/// CPU time (user and system) the calling thread has used.
fn thread_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one `rusage` to the pointer it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr());
        usage.assume_init()
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

fn main() {
    let wasm = duet_testdata::wasm_apps::build_hello_app_without_kv().expect("building examples/apps/hello");
    let app = Arc::new(App::load(&AppConfig::new(wasm), None).expect("loading the hello app"));
    let concurrency: u32 =
        std::env::var("DUET_APP_BENCH_CONCURRENCY").ok().and_then(|s| s.parse().ok()).unwrap_or(1).max(1);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        // `concurrency` clients, each sending its share of the requests one after another.
        let once = async |count: u32| {
            let mut clients = tokio::task::JoinSet::new();
            for i in 0..concurrency {
                let app = Arc::clone(&app);
                let share = count / concurrency + u32::from(i < count % concurrency);
                clients.spawn(async move {
                    for _ in 0..share {
                        get(&app).await;
                    }
                });
            }
            clients.join_all().await;
        };
        once(300).await;
        let mut rounds = Vec::new();
        let soak = std::env::var("DUET_APP_BENCH_SECS").ok().and_then(|s| s.parse::<u64>().ok());
        let round_count = if soak.is_some() { 1 } else { ROUNDS };
        for _ in 0..round_count {
            let before = app.stats().snapshot();
            let cpu_start = thread_cpu();
            let start = Instant::now();
            let mut n = 0u32;
            match soak {
                Some(secs) => {
                    let until = start + Duration::from_secs(secs);
                    while Instant::now() < until {
                        once(100).await;
                        n += 100;
                    }
                }
                None => {
                    once(PER_ROUND).await;
                    n = PER_ROUND;
                }
            }
            let wall = start.elapsed();
            let cpu = thread_cpu() - cpu_start;
            let after = app.stats().snapshot();
            let instances = (after.instances_created - before.instances_created).max(1);
            let instantiate_us = (after.instantiate_ns_sum - before.instantiate_ns_sum) as f64 / instances as f64 / 1e3;
            rounds.push((wall.as_secs_f64() * 1e6 / f64::from(n), instantiate_us, cpu.as_secs_f64() * 1e6 / f64::from(n)));
        }
        let mut whole: Vec<f64> = rounds.iter().map(|r| r.0).collect();
        let mut inst: Vec<f64> = rounds.iter().map(|r| r.1).collect();
        let mut cpu: Vec<f64> = rounds.iter().map(|r| r.2).collect();
        whole.sort_by(f64::total_cmp);
        inst.sort_by(f64::total_cmp);
        cpu.sort_by(f64::total_cmp);
        println!(
            "GET / in process, {concurrency} at a time: {:.1} µs per request (median of {}; min {:.1}, max {:.1}), of which instantiation {:.1} µs; \
             CPU time of the serving thread {:.1} µs per request (min {:.1})",
            whole[whole.len() / 2],
            whole.len(),
            whole[0],
            whole[whole.len() - 1],
            inst[inst.len() / 2],
            cpu[cpu.len() / 2],
            cpu[0],
        );
    });
}
