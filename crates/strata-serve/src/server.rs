//! The accept loop: connection limits, timeouts, CORS, graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::header::{
    ACCEPT, ACCEPT_RANGES, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, LAST_MODIFIED, RANGE,
};
use http::{HeaderValue, Method};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::handler::{self, State};

/// Which web origins may read the dataset from a browser (CORS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origins {
    /// Any origin (`Access-Control-Allow-Origin: *`).
    Any,
    /// Only these origins (for example `https://viewer.example.org`).
    List(Vec<String>),
}

/// How the server behaves. Defaults: any origin, no token, 1,024 connections, 16 KiB of
/// request headers, 30 s to send a request's headers (also the keep-alive idle time), 60 s
/// for a client to take any of a response's bytes, 30 s for in-flight requests at shutdown.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServeOptions {
    /// CORS origins.
    pub origins: Origins,
    /// A bearer token every request but `/healthz` and CORS preflights must carry.
    pub token: Option<String>,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// The largest request head accepted (larger gets 431).
    pub max_header_bytes: usize,
    /// The time a client has to send a request's headers, counted from the connection's
    /// start or the end of its previous response; the connection is closed after it.
    pub header_timeout: Duration,
    /// How long a write to a client may wait without any of it being taken: a client that
    /// stops reading a response loses its connection after this time (its slot is freed);
    /// one that reads slowly but steadily is served to the end.
    pub write_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            origins: Origins::Any,
            token: None,
            max_connections: 1024,
            max_header_bytes: 16 << 10,
            header_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

impl ServeOptions {
    /// Sets the CORS origins.
    #[must_use]
    pub fn origins(mut self, origins: Origins) -> Self {
        self.origins = origins;
        self
    }

    /// Requires `Authorization: Bearer <token>`.
    #[must_use]
    pub fn token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// Sets the write timeout (at least 1 ms).
    #[must_use]
    pub fn write_timeout(mut self, t: Duration) -> Self {
        self.write_timeout = t.max(Duration::from_millis(1));
        self
    }

    /// Sets the connection limit (at least 1).
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Sets the request-head size limit (at least 8 KiB, hyper's smallest buffer).
    #[must_use]
    pub fn max_header_bytes(mut self, n: usize) -> Self {
        self.max_header_bytes = n.max(8 << 10);
        self
    }

    /// Sets the time a client has to send a request's headers.
    #[must_use]
    pub fn header_timeout(mut self, t: Duration) -> Self {
        self.header_timeout = t;
        self
    }

    /// Sets how long shutdown waits for in-flight requests.
    #[must_use]
    pub fn shutdown_grace(mut self, t: Duration) -> Self {
        self.shutdown_grace = t;
        self
    }
}

fn cors(origins: &Origins) -> Result<CorsLayer> {
    let allow = match origins {
        Origins::Any => AllowOrigin::any(),
        Origins::List(list) => {
            let values = list
                .iter()
                .map(|o| {
                    HeaderValue::from_str(o)
                        .map_err(|_| Error::Config(format!("invalid CORS origin {o:?}")))
                })
                .collect::<Result<Vec<_>>>()?;
            AllowOrigin::list(values)
        }
    };
    Ok(CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::HEAD])
        .allow_headers([
            RANGE,
            IF_NONE_MATCH,
            IF_MODIFIED_SINCE,
            IF_RANGE,
            AUTHORIZATION,
            ACCEPT,
        ])
        .expose_headers([
            CONTENT_RANGE,
            CONTENT_LENGTH,
            CONTENT_TYPE,
            ACCEPT_RANGES,
            ETAG,
            LAST_MODIFIED,
        ])
        .max_age(Duration::from_secs(86_400)))
}

/// Serves `dataset` on `listener` until `shutdown` completes, then stops accepting, lets
/// in-flight requests finish (within [`ServeOptions::shutdown_grace`]) and returns.
///
/// # Errors
/// [`Error::Config`] for an invalid CORS origin.
pub async fn serve(
    listener: TcpListener,
    dataset: Arc<Dataset>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let cors = cors(&options.origins)?;
    let state = Arc::new(State {
        dataset,
        authorization: options
            .token
            .as_ref()
            .map(|t| format!("Bearer {t}").into_bytes()),
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout)
        .max_buf_size(options.max_header_bytes.max(8 << 10))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(options.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(options.header_timeout))
        .keep_alive_timeout(options.header_timeout);
    let limit = Arc::new(Semaphore::new(options.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&limit).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(target: "strata_serve", error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        let service = ServiceBuilder::new()
            .layer(cors.clone())
            .service(tower::service_fn(move |req| {
                handler::handle(Arc::clone(&state), remote, req)
            }));
        let service = hyper_util::service::TowerToHyperService::new(service);
        let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
        stream.set_write_timeout(Some(options.write_timeout));
        let conn = builder
            .serve_connection(TokioIo::new(Box::pin(stream)), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(target: "strata_serve", remote = %remote, error = %e, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(options.shutdown_grace) => {
            tracing::warn!(target: "strata_serve", "shutdown: requests still in flight after the grace time");
        }
    }
    Ok(())
}
