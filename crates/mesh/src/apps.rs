//! Wasm HTTP applications as clusters: a cluster with `app:` is served in-process by a
//! `wasi:http/incoming-handler` component (duet-app), behind the same routes, filters, routing
//! programs and metrics as a cluster of endpoints.
//!
//! What the app may reach is wired here, after the snapshot is built ([`AppLinks`]):
//! - outbound HTTP goes through the sidecar's clusters: the request's host names the cluster
//!   (`http://stable/path` goes to cluster `stable`), and only authorities the app's
//!   `allowed_outbound` lists get this far (duet-app refuses the rest);
//! - its key-value store is a map of one of the sidecar's eBPF or duet-ABI filters (`kv_map:
//!   <filter>/<map>`), so a filter counts or blocks by what the app stores; keys and values are
//!   zero-padded to the map's sizes and `get` returns the whole value. Without `kv_map` the app
//!   gets a private bounded in-memory store.

use std::sync::{Arc, OnceLock, Weak};

use duet_app::{AppBody, BoxFuture, KvError, KvStore, Outbound, OutboundError};
use duet_maps::{Map, MapError};
use http::{Request, Response};

use crate::upstream::{Clusters, UpstreamError};

/// What an app cluster binds to once the rest of the snapshot exists.
#[derive(Debug, Default)]
pub struct AppLinks {
    clusters: OnceLock<Weak<Clusters>>,
    kv: OnceLock<Arc<Map>>,
}

impl AppLinks {
    /// The snapshot's clusters, for outbound requests.
    pub fn bind_clusters(&self, clusters: &Arc<Clusters>) {
        let _ = self.clusters.set(Arc::downgrade(clusters));
    }

    /// The map behind the key-value store.
    pub fn bind_kv(&self, map: Arc<Map>) {
        let _ = self.kv.set(map);
    }
}

/// Outbound requests of an app, through the sidecar's clusters.
#[derive(Debug)]
pub struct ClusterOutbound(pub Arc<AppLinks>);

impl Outbound for ClusterOutbound {
    fn send(&self, req: Request<AppBody>) -> BoxFuture<'static, Result<Response<AppBody>, OutboundError>> {
        let clusters = self.0.clusters.get().and_then(Weak::upgrade);
        Box::pin(async move {
            let clusters = clusters.ok_or(OutboundError::Unavailable)?;
            let host = req
                .uri()
                .host()
                .map(str::to_owned)
                .or_else(|| {
                    req.headers()
                        .get(http::header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .map(|h| h.rsplit_once(':').map_or(h, |(host, _)| host).to_owned())
                })
                .ok_or(OutboundError::NotFound)?;
            let cluster = clusters.get(&host).cloned().ok_or(OutboundError::NotFound)?;
            let (mut parts, body) = req.into_parts();
            let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
            parts.uri = pq.parse().map_err(|_| OutboundError::Other(format!("bad path `{pq}`")))?;
            let timeout = cluster.request_timeout();
            match cluster.send(Request::from_parts(parts, body), timeout, None).await {
                Ok((resp, _in_flight)) => Ok(resp),
                Err(UpstreamError::Connect(_)) => Err(OutboundError::ConnectionRefused),
                Err(UpstreamError::Timeout(_)) => Err(OutboundError::Timeout),
                Err(e @ UpstreamError::Protocol(_)) => Err(OutboundError::Other(e.to_string())),
            }
        })
    }
}

/// An app's key-value store over a filter's map.
#[derive(Debug)]
pub struct MapKv(pub Arc<AppLinks>);

impl MapKv {
    fn map(&self) -> Result<&Arc<Map>, KvError> {
        self.0.kv.get().ok_or_else(|| KvError::Other("the store's map is not bound yet".into()))
    }

    fn key(map: &Map, key: &str) -> Result<Vec<u8>, KvError> {
        let size = map.spec().key_size as usize;
        if key.len() > size {
            return Err(KvError::TooLarge(format!("keys are at most {size} bytes; this one is {}", key.len())));
        }
        let mut k = key.as_bytes().to_vec();
        k.resize(size, 0);
        Ok(k)
    }
}

impl KvStore for MapKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let map = self.map()?;
        let k = MapKv::key(map, key)?;
        Ok(map.get(&k).and_then(|v| v.as_single().map(<[u8]>::to_vec)))
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        let map = self.map()?;
        let k = MapKv::key(map, key)?;
        let size = map.spec().value_size as usize;
        if value.len() > size || map.map_type().is_per_cpu() {
            return Err(KvError::TooLarge(format!("values are at most {size} bytes; this one is {}", value.len())));
        }
        let mut v = value.to_vec();
        v.resize(size, 0);
        map.update(&k, &v, 0, None).map_err(|e| match e {
            MapError::Full => KvError::TooLarge("the map is full".into()),
            e => KvError::Other(e.to_string()),
        })
    }

    fn delete(&self, key: &str) -> Result<bool, KvError> {
        let map = self.map()?;
        let k = MapKv::key(map, key)?;
        match map.delete(&k) {
            Ok(()) => Ok(true),
            Err(MapError::NotFound) => Ok(false),
            Err(e) => Err(KvError::Other(e.to_string())),
        }
    }
}
