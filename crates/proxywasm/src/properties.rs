//! `proxy_get_property`: Envoy's attributes, with Envoy's encodings. A path is its segments
//! separated by NUL (`request\0path`); strings are returned raw, integers and timestamps as
//! 8-byte little-endian `i64` (timestamps in nanoseconds since the Unix epoch), booleans as one
//! byte, and header maps in the pairs format (one more segment selects a header's value).
//! Values set with `proxy_set_property` are found by their whole path.

use std::net::SocketAddr;
use std::time::UNIX_EPOCH;

use crate::host::Host;
use crate::pairs::{self, Pairs};

fn int(v: i64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

fn header<'a>(map: &'a Pairs, name: &str) -> Option<&'a [u8]> {
    map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
}

/// A header map as a property: the whole map, or one header when the path names one.
fn map_property(map: &Pairs, rest: &[&str]) -> Option<Vec<u8>> {
    match rest {
        [] => Some(pairs::serialize_map(map)),
        [name] => header(map, name).map(<[u8]>::to_vec),
        _ => None,
    }
}

fn address(addr: Option<SocketAddr>, rest: &[&str]) -> Option<Vec<u8>> {
    let addr = addr?;
    match rest {
        ["address"] => Some(addr.to_string().into_bytes()),
        ["port"] => Some(int(addr.port().into())),
        _ => None,
    }
}

fn non_empty(s: &str) -> Option<Vec<u8>> {
    (!s.is_empty()).then(|| s.as_bytes().to_vec())
}

/// The value of the property at `path`, `None` when there is none.
pub(crate) fn get(host: &Host, path: &[u8]) -> Option<Vec<u8>> {
    let path_str = std::str::from_utf8(path).ok()?;
    let segments: Vec<&str> = path_str.split('\0').collect();
    let config = &host.plugin.config;
    let builtin = match segments.as_slice() {
        ["plugin_name"] => Some(config.name.as_bytes().to_vec()),
        ["plugin_root_id"] => Some(config.root_id.as_bytes().to_vec()),
        ["plugin_vm_id"] => Some(config.vm_id.as_bytes().to_vec()),
        _ => host.stream().and_then(|s| {
            let props = &s.properties;
            match segments.as_slice() {
                ["request", "path"] => header(&s.request_headers, ":path").map(<[u8]>::to_vec),
                ["request", "url_path"] => header(&s.request_headers, ":path").map(|p| {
                    let end = p.iter().position(|&b| b == b'?').unwrap_or(p.len());
                    p[..end].to_vec()
                }),
                ["request", "host"] => header(&s.request_headers, ":authority").map(<[u8]>::to_vec),
                ["request", "scheme"] => header(&s.request_headers, ":scheme").map(<[u8]>::to_vec),
                ["request", "method"] => header(&s.request_headers, ":method").map(<[u8]>::to_vec),
                ["request", "referer"] => header(&s.request_headers, "referer").map(<[u8]>::to_vec),
                ["request", "useragent"] => header(&s.request_headers, "user-agent").map(<[u8]>::to_vec),
                ["request", "headers", rest @ ..] => map_property(&s.request_headers, rest),
                ["request", "trailers", rest @ ..] => map_property(&s.request_trailers, rest),
                ["request", "id"] => non_empty(&props.request_id)
                    .or_else(|| header(&s.request_headers, "x-request-id").map(<[u8]>::to_vec)),
                ["request", "protocol"] => non_empty(&props.protocol),
                ["request", "time"] => props.start_time.map(|t| {
                    let ns = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
                    int(i64::try_from(ns).unwrap_or(i64::MAX))
                }),
                ["request", "size"] => Some(int(s.request_body.len() as i64)),
                ["response", "code"] => props
                    .response_code
                    .map(i64::from)
                    .or_else(|| {
                        let status = header(&s.response_headers, ":status")?;
                        std::str::from_utf8(status).ok()?.parse().ok()
                    })
                    .map(int),
                ["response", "headers", rest @ ..] => map_property(&s.response_headers, rest),
                ["response", "trailers", rest @ ..] => map_property(&s.response_trailers, rest),
                ["response", "size"] => Some(int(s.response_body.len() as i64)),
                ["source", rest @ ..] => address(props.source, rest),
                ["destination", rest @ ..] => address(props.destination, rest),
                ["connection", "mtls"] => Some(vec![u8::from(props.mtls)]),
                ["xds", "route_name"] | ["route_name"] => non_empty(&props.route_name),
                ["xds", "cluster_name"] | ["cluster_name"] => non_empty(&props.cluster_name),
                _ => None,
            }
        }),
    };
    builtin.or_else(|| host.custom_properties().get(path_str).cloned())
}
