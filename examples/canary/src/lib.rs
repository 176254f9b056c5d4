//! `canary`: a route program for duet's sidecar that sends a share of the traffic to a canary
//! deployment, written once with the duet SDK (a `.bpf.o` for duet's eBPF VM and a `.wasm` for
//! its Wasm host).
//!
//! The route it is attached to lists two clusters: index [`STABLE`] (`stable`) and index
//! [`CANARY`] (`canary`). A request goes to the canary when
//! - it says so itself: header `x-canary: 1`; or
//! - its client is in the canary share: the client address hashes ([`client_bucket`]) to a
//!   bucket in `0..100` below the percentage in `CONFIG`. The same client always lands on the
//!   same side, so a user does not flip between versions from one request to the next.
//!
//! Everything else goes to the stable cluster. In both cases the cluster's balancer picks the
//! endpoint.
//!
//! Maps:
//! - `CONFIG`: array of one `u32`, the canary percentage (`0` sends only opted-in requests to the
//!   canary; values above 100 count as 100). Change it at run time to ramp the canary up.
//! - `STATS`: array of 2 `u64`: requests routed to the stable cluster (index 0) and to the canary
//!   (index 1).
#![no_std]

use core::net::IpAddr;

use duet::{Array, Route, RouteContext};

/// The stable cluster's index in the route's `clusters`.
pub const STABLE: u32 = 0;
/// The canary cluster's index in the route's `clusters`.
pub const CANARY: u32 = 1;

/// The canary percentage, at index 0.
#[duet::map]
static CONFIG: Array<u32> = Array::with_max_entries(1, 0);

/// Requests routed to each cluster, by index.
#[duet::map]
static STATS: Array<u64> = Array::with_max_entries(2, 0);

#[duet::route]
fn canary(req: RouteContext) -> Route {
    let opted_in = req.header("x-canary").is_some_and(|value| value == "1");
    let percent = CONFIG.get(0).unwrap_or(0).min(100);
    let in_share = percent > 0 && req.client_ip().is_some_and(|ip| client_bucket(ip) < percent);
    let cluster = if opted_in || in_share { CANARY } else { STABLE };
    let _ = STATS.add_u64(cluster, 1);
    Route::cluster(cluster)
}

/// The client's bucket in `0..100`: FNV-1a of the address bytes, modulo 100.
#[inline(always)]
pub fn client_bucket(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(ip) => fnv1a(&ip.octets()) % 100,
        IpAddr::V6(ip) => fnv1a(&ip.octets()) % 100,
    }
}

/// 32-bit FNV-1a.
#[inline(always)]
fn fnv1a(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for &b in bytes {
        hash = (hash ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    hash
}

#[cfg(test)]
mod tests {
    extern crate std;

    use core::net::Ipv6Addr;

    use duet::testing::{HttpExchange, run_route};

    use super::*;

    fn route(client: [u8; 4], canary_header: Option<&str>) -> Route {
        let mut ex = HttpExchange::get("/").with_client(client, 40000);
        if let Some(value) = canary_header {
            ex = ex.with_header("x-canary", value);
        }
        run_route(canary, &ex)
    }

    /// Clients 10.0.i.j for `n` values.
    fn clients(n: u32) -> impl Iterator<Item = [u8; 4]> {
        (0..n).map(|i| [10, 0, (i >> 8) as u8, i as u8])
    }

    #[test]
    fn without_a_share_only_opted_in_requests_go_to_the_canary() {
        assert!(clients(200).all(|c| route(c, None) == Route::cluster(STABLE)));
        assert_eq!(route([10, 0, 0, 1], Some("1")), Route::cluster(CANARY));
        assert_eq!(route([10, 0, 0, 1], Some("0")), Route::cluster(STABLE));
        assert_eq!(route([10, 0, 0, 1], Some("yes")), Route::cluster(STABLE), "only `1` opts in");
        assert_eq!(STATS.get(STABLE), Some(202));
        assert_eq!(STATS.get(CANARY), Some(1));
    }

    #[test]
    fn a_share_of_clients_goes_to_the_canary_and_stays_there() {
        CONFIG.set(0, &30).unwrap();
        let to_canary: std::vec::Vec<[u8; 4]> =
            clients(1000).filter(|&c| route(c, None) == Route::cluster(CANARY)).collect();
        // FNV-1a spreads these addresses evenly enough: 30 % of 1000, give or take.
        assert!((250..350).contains(&to_canary.len()), "{} of 1000", to_canary.len());
        for &c in &to_canary {
            assert!(client_bucket(IpAddr::from(c)) < 30);
            assert_eq!(route(c, None), Route::cluster(CANARY), "the same client, the same side");
        }
        // Opting in works for everyone.
        assert!(clients(50).all(|c| route(c, Some("1")) == Route::cluster(CANARY)));
    }

    #[test]
    fn the_share_is_capped_at_100_percent() {
        CONFIG.set(0, &250).unwrap();
        assert!(clients(100).all(|c| route(c, None) == Route::cluster(CANARY)));
        CONFIG.set(0, &0).unwrap();
        assert!(clients(100).all(|c| route(c, None) == Route::cluster(STABLE)));
    }

    #[test]
    fn ipv6_clients_are_hashed_too() {
        CONFIG.set(0, &100).unwrap();
        let ex = HttpExchange::get("/").with_client(Ipv6Addr::LOCALHOST, 1);
        assert_eq!(run_route(canary, &ex), Route::cluster(CANARY));
        assert!(client_bucket(IpAddr::V6(Ipv6Addr::LOCALHOST)) < 100);
    }
}
