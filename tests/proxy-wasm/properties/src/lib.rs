//! Reads Envoy attributes with `get_property` and echoes them as response headers
//! `x-prop-<name>`: strings as they are, integers (8-byte little-endian) and booleans (1 byte)
//! in decimal / `true`/`false`, header maps as their number of pairs plus one value. It also
//! sets a custom property on the request and reads it back on the response.

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

proxy_wasm::main! {{
    proxy_wasm::set_http_context(|_, _| Box::new(Props { seen: Vec::new() }));
}}

/// How a property's bytes are turned into a header value.
enum Kind {
    Text,
    Int,
    Bool,
    Pairs,
}

const REQUEST: &[(&str, &[&str], Kind)] = &[
    ("request-path", &["request", "path"], Kind::Text),
    ("request-url-path", &["request", "url_path"], Kind::Text),
    ("request-host", &["request", "host"], Kind::Text),
    ("request-scheme", &["request", "scheme"], Kind::Text),
    ("request-method", &["request", "method"], Kind::Text),
    ("request-id", &["request", "id"], Kind::Text),
    ("request-protocol", &["request", "protocol"], Kind::Text),
    ("request-time", &["request", "time"], Kind::Int),
    ("request-headers", &["request", "headers"], Kind::Pairs),
    ("request-user-agent", &["request", "headers", "user-agent"], Kind::Text),
    ("source-address", &["source", "address"], Kind::Text),
    ("source-port", &["source", "port"], Kind::Int),
    ("destination-address", &["destination", "address"], Kind::Text),
    ("destination-port", &["destination", "port"], Kind::Int),
    ("connection-mtls", &["connection", "mtls"], Kind::Bool),
    ("plugin-name", &["plugin_name"], Kind::Text),
    ("plugin-root-id", &["plugin_root_id"], Kind::Text),
    ("plugin-vm-id", &["plugin_vm_id"], Kind::Text),
    ("route-name", &["xds", "route_name"], Kind::Text),
    ("cluster-name", &["xds", "cluster_name"], Kind::Text),
    ("missing", &["no", "such", "property"], Kind::Text),
];

const RESPONSE: &[(&str, &[&str], Kind)] = &[
    ("response-code", &["response", "code"], Kind::Int),
    ("response-headers", &["response", "headers"], Kind::Pairs),
    ("custom", &["duet", "custom"], Kind::Text),
];

struct Props {
    seen: Vec<(String, String)>,
}

impl Props {
    fn read(&mut self, list: &[(&str, &[&str], Kind)]) {
        for (name, path, kind) in list {
            let value = match self.get_property(path.to_vec()) {
                None => "<none>".to_owned(),
                Some(bytes) => match kind {
                    Kind::Text => String::from_utf8_lossy(&bytes).into_owned(),
                    Kind::Int => match <[u8; 8]>::try_from(bytes.as_slice()) {
                        Ok(b) => i64::from_le_bytes(b).to_string(),
                        Err(_) => format!("<{} bytes>", bytes.len()),
                    },
                    Kind::Bool => match bytes.as_slice() {
                        [0] => "false".to_owned(),
                        [1] => "true".to_owned(),
                        _ => format!("<{} bytes>", bytes.len()),
                    },
                    Kind::Pairs => pairs_summary(&bytes),
                },
            };
            self.seen.push((format!("x-prop-{name}"), value));
        }
    }
}

/// `<number of pairs>:<first name>` of a serialized header map.
fn pairs_summary(bytes: &[u8]) -> String {
    let Some(n) = bytes.get(..4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize) else {
        return "<short>".to_owned();
    };
    let first = n
        .checked_sub(1)
        .and_then(|_| {
            let len = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?) as usize;
            let start = 4 + n * 8;
            bytes.get(start..start + len)
        })
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .unwrap_or_default();
    format!("{n}:{first}")
}

impl Context for Props {}

impl HttpContext for Props {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.read(REQUEST);
        self.set_property(vec!["duet", "custom"], Some(b"custom-value"));
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.read(RESPONSE);
        for (name, value) in std::mem::take(&mut self.seen) {
            self.add_http_response_header(&name, &value);
        }
        Action::Continue
    }
}
