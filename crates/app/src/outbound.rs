//! Outbound HTTP from apps: the [`Outbound`] trait the sidecar implements, and the allow-list
//! check in front of it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::stats::{self, AppStats};
use crate::{AppBody, BoxError};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Performs an app's outbound requests (`wasi:http/outgoing-handler`). duet-app calls it only
/// for authorities the app's `allowed_outbound` lists; the sidecar sends them through its
/// clusters. The request URI is absolute (`http://authority/path`) and carries a `host` header.
pub trait Outbound: Send + Sync {
    /// Sends `req` and resolves to the response head; the body streams afterwards.
    fn send(&self, req: http::Request<AppBody>) -> BoxFuture<'static, Result<http::Response<AppBody>, OutboundError>>;
}

/// Why an outbound request failed; the guest sees the matching `wasi:http/types.error-code`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboundError {
    /// No cluster or endpoint answers to this authority (`destination-not-found`).
    #[error("destination not found")]
    NotFound,
    /// Every endpoint refused the connection (`connection-refused`).
    #[error("connection refused")]
    ConnectionRefused,
    /// The destination is known but unavailable, e.g. all endpoints ejected
    /// (`destination-unavailable`).
    #[error("destination unavailable")]
    Unavailable,
    /// No response in time (`HTTP-response-timeout`).
    #[error("response timeout")]
    Timeout,
    /// Anything else (`internal-error` with this text).
    #[error("{0}")]
    Other(String),
}

impl From<OutboundError> for HttpError {
    fn from(e: OutboundError) -> HttpError {
        match e {
            OutboundError::NotFound => HttpError::DestinationNotFound,
            OutboundError::ConnectionRefused => HttpError::ConnectionRefused,
            OutboundError::Unavailable => HttpError::DestinationUnavailable,
            OutboundError::Timeout => HttpError::HttpResponseTimeout,
            OutboundError::Other(why) => HttpError::InternalError(Some(why)),
        }
    }
}

/// The parsed `allowed_outbound` list.
#[derive(Debug, Default)]
pub(crate) struct Allowlist {
    any: bool,
    /// `(host, port)`, host lower-cased; `None` matches every port.
    entries: Vec<(String, Option<u16>)>,
}

impl Allowlist {
    /// Builds the list from entries [`AppConfig::validate`](crate::AppConfig::validate) accepted.
    pub(crate) fn new(entries: &[String]) -> Allowlist {
        let mut list = Allowlist::default();
        for entry in entries {
            if entry == "*" {
                list.any = true;
            } else if let Ok(authority) = entry.parse::<http::uri::Authority>() {
                list.entries.push((authority.host().to_ascii_lowercase(), authority.port_u16()));
            }
        }
        list
    }

    pub(crate) fn allows(&self, authority: Option<&http::uri::Authority>) -> bool {
        if self.any {
            return true;
        }
        let Some(authority) = authority else { return false };
        let host = authority.host();
        let port = authority.port_u16();
        self.entries.iter().any(|(h, p)| h.eq_ignore_ascii_case(host) && (p.is_none() || *p == port))
    }
}

/// The `wasi:http` hooks of one request's store: outbound requests go through the allow-list
/// to [`Outbound`], or are refused with `HTTP-request-denied`.
pub(crate) struct OutboundHooks {
    pub(crate) outbound: Option<Arc<dyn Outbound>>,
    pub(crate) allow: Arc<Allowlist>,
    pub(crate) stats: Arc<AppStats>,
    pub(crate) app: Arc<str>,
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type SendFuture = Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>;

impl WasiHttpHooks for OutboundHooks {
    fn default_scheme(&mut self) -> Option<http::uri::Scheme> {
        // Plain HTTP to the sidecar's clusters, which decide about TLS themselves.
        Some(http::uri::Scheme::HTTP)
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        let authority = request.uri().authority().cloned();
        let outbound = match &self.outbound {
            Some(outbound) if self.allow.allows(authority.as_ref()) => Arc::clone(outbound),
            _ => {
                stats::bump(&self.stats.outbound_denied);
                tracing::info!(
                    app = %self.app,
                    authority = authority.as_ref().map(|a| a.as_str()).unwrap_or(""),
                    "outbound request refused: authority not in allowed_outbound"
                );
                return Box::new(async { Err(HttpError::HttpRequestDenied) });
            }
        };
        stats::bump(&self.stats.outbound_requests);
        let request = request.map(|body| body.map_err(|e| Box::new(e) as BoxError).boxed_unsync());
        Box::new(async move {
            let response = outbound.send(request).await.map_err(HttpError::from)?;
            let response = response.map(|body| {
                body.map_err(|e| HttpError::InternalError(Some(format!("outbound response body: {e}")))).boxed_unsync()
            });
            Ok((response, Box::new(async { Ok(()) }) as IoFuture))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Allowlist;

    fn allows(list: &[&str], authority: &str) -> bool {
        let list = Allowlist::new(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        list.allows(Some(&authority.parse().unwrap()))
    }

    #[test]
    fn allowlist_matches_host_and_port() {
        assert!(allows(&["api.example:8080"], "api.example:8080"));
        assert!(allows(&["API.example:8080"], "api.EXAMPLE:8080"));
        assert!(!allows(&["api.example:8080"], "api.example:8081"));
        assert!(!allows(&["api.example:8080"], "api.example"));
        assert!(allows(&["api.example"], "api.example:9000"));
        assert!(allows(&["api.example"], "api.example"));
        assert!(!allows(&["api.example"], "evil.example"));
        assert!(!allows(&["api.example"], "api.example.evil"));
        assert!(allows(&["*"], "anything:1"));
        assert!(!allows(&[], "127.0.0.1:80"));
        assert!(!Allowlist::new(&[]).allows(None));
    }
}
