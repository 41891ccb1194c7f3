//! One request: authorised, parsed, resolved against the dataset, answered.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use http::header::{
    ACCEPT, ACCEPT_RANGES, ALLOW, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    LAST_MODIFIED, WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::Frame;
use strata_store::{ByteRange, DynObjectReader, ObjectHead, ReadableStore, StoreKey};

use crate::conditional::{self, Answer};
use crate::dataset::{Dataset, Target};
use crate::error::Error;
use crate::path::{DatasetPath, PathError};

/// The response body: one buffer, or pieces streamed from the store.
pub(crate) type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// Responses up to this size are read in one piece; larger ones are streamed in pieces of
/// this size, so a whole-shard download never holds more than one piece in memory.
const PIECE: u64 = 1 << 20;

/// What every request needs.
pub(crate) struct State {
    pub(crate) dataset: Arc<Dataset>,
    /// `Bearer <token>`, when access needs one.
    pub(crate) authorization: Option<Vec<u8>>,
}

/// Answers one request and writes its access-log line.
pub(crate) async fn handle(
    state: Arc<State>,
    remote: SocketAddr,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = answer(&state, &req).await;
    let status = response.status().as_u16();
    let bytes = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    tracing::info!(
        target: "strata_serve::access",
        remote = %remote,
        method = %method,
        path = %path,
        status,
        bytes,
        micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        "request"
    );
    Ok(response)
}

async fn answer(state: &State, req: &Request<hyper::body::Incoming>) -> Response<Body> {
    let uri_path = req.uri().path();
    if uri_path == "/healthz" {
        return text(StatusCode::OK, "ok\n");
    }
    if let Some(expected) = &state.authorization {
        let given = req
            .headers()
            .get(AUTHORIZATION)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        if !constant_time_eq(given, expected) {
            let mut r = text(
                StatusCode::UNAUTHORIZED,
                "this server needs 'Authorization: Bearer <token>'\n",
            );
            r.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    let method = req.method();
    if method == Method::OPTIONS {
        let mut r = empty(StatusCode::NO_CONTENT);
        r.headers_mut().insert(ALLOW, allow());
        return r;
    }
    if method != Method::GET && method != Method::HEAD {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "this server is read-only: GET and HEAD only\n",
        );
        r.headers_mut().insert(ALLOW, allow());
        return r;
    }
    let path = match DatasetPath::parse(uri_path) {
        Ok(p) => p,
        Err(e @ PathError::Malformed(_)) => {
            return text(StatusCode::BAD_REQUEST, &format!("{e}\n"));
        }
        Err(_) => return not_found(),
    };
    let head_only = method == Method::HEAD;
    match opened(&state.dataset, &path, req.headers(), head_only).await {
        Ok(Some(o)) => {
            let source = Source::Open(o.reader);
            return respond(
                o.answer, &o.head, source, o.body, &path, head_only, uri_path,
            )
            .await;
        }
        Ok(None) => {}
        Err(Error::NotFound) => return not_found(),
        Err(e) => return server_error(&e, uri_path),
    }
    let target = match state.dataset.resolve(&path).await {
        Ok(t) => t,
        Err(Error::NotFound) => return not_found(),
        Err(e) => return server_error(&e, uri_path),
    };
    match target {
        Target::Folder(listing) => {
            if !wants_listing(req) {
                return text(
                    StatusCode::NOT_FOUND,
                    "a folder: add ?list (or 'Accept: application/json') for its JSON listing\n",
                );
            }
            let body = serde_json::to_vec_pretty(&listing).unwrap_or_default();
            let mut r = full(StatusCode::OK, Bytes::from(body), head_only);
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        Target::Object { store, key, head } => {
            let answer = conditional::answer(req.headers(), &head);
            let source = Source::Store { store, key };
            respond(answer, &head, source, None, &path, head_only, uri_path).await
        }
    }
}

/// An object opened on a blocking thread by the fast path: its head, the answer to the
/// request's conditions and range, and the body when it is small enough to read at once.
struct Opened {
    reader: DynObjectReader,
    head: ObjectHead,
    answer: Answer,
    body: Option<Bytes>,
}

/// The fast path for files: one hand-over to a blocking thread that opens the first of the
/// dataset's [`candidates`](Dataset::candidates) that exists, evaluates the request against
/// its head and reads a small body, all on that one thread (one open, one `fstat`, one
/// `pread`). `Ok(None)` when no candidate exists or the backend does not open files (object
/// storage): the full resolution then answers.
async fn opened(
    dataset: &Dataset,
    path: &DatasetPath,
    headers: &http::HeaderMap,
    head_only: bool,
) -> Result<Option<Opened>, Error> {
    let candidates = dataset.candidates(path);
    if candidates.is_empty() {
        return Ok(None);
    }
    let headers = headers.clone();
    let open = move || {
        for (store, key) in candidates {
            let reader = match store.open_blocking(&key) {
                None => return Ok(None),
                Some(Err(e)) if e.is_not_found() => continue,
                Some(Err(e)) => return Err(Error::store(e)),
                Some(Ok(r)) => r,
            };
            let head = reader.head().clone();
            let answer = conditional::answer(&headers, &head);
            let range = match &answer {
                Answer::Whole => 0..head.size,
                Answer::Partial(r) => r.clone(),
                Answer::NotModified | Answer::Unsatisfiable => 0..0,
            };
            let len = range.end - range.start;
            let body = if head_only || len == 0 || len > PIECE {
                None
            } else {
                Some(reader.read_blocking(range).map_err(Error::store)?)
            };
            return Ok(Some(Opened {
                reader,
                head,
                answer,
                body,
            }));
        }
        Ok(None)
    };
    tokio::task::spawn_blocking(open)
        .await
        .map_err(|e| Error::Io {
            what: "an open task failed".into(),
            source: std::io::Error::other(e),
        })?
}

/// The answer for an object: 304, 416, 200 or 206 with its validators, type and length.
/// `body` is the answer's bytes when already read.
async fn respond(
    answer: Answer,
    head: &ObjectHead,
    source: Source,
    body: Option<Bytes>,
    path: &DatasetPath,
    head_only: bool,
    uri_path: &str,
) -> Response<Body> {
    let mut r = match answer {
        Answer::NotModified => empty(StatusCode::NOT_MODIFIED),
        Answer::Unsatisfiable => {
            let mut r = empty(StatusCode::RANGE_NOT_SATISFIABLE);
            insert(&mut r, CONTENT_RANGE, &format!("bytes */{}", head.size));
            r
        }
        Answer::Whole => {
            match object(source, 0..head.size, StatusCode::OK, head_only, body).await {
                Ok(r) => r,
                Err(e) => return server_error(&e, uri_path),
            }
        }
        Answer::Partial(range) => {
            let content_range = format!("bytes {}-{}/{}", range.start, range.end - 1, head.size);
            let status = StatusCode::PARTIAL_CONTENT;
            match object(source, range, status, head_only, body).await {
                Ok(mut r) => {
                    insert(&mut r, CONTENT_RANGE, &content_range);
                    r
                }
                Err(e) => return server_error(&e, uri_path),
            }
        }
    };
    let h = r.headers_mut();
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(CONTENT_TYPE, content_type(path.segments()));
    if let Some(tag) = conditional::etag(head).and_then(|t| HeaderValue::from_str(&t).ok()) {
        h.insert(ETAG, tag);
    }
    if let Some(date) =
        conditional::last_modified(head).and_then(|d| HeaderValue::from_str(&d).ok())
    {
        h.insert(LAST_MODIFIED, date);
    }
    r
}

/// Where an object's bytes come from.
#[derive(Clone)]
enum Source {
    /// A file opened by the fast path (every read is of the version opened).
    Open(DynObjectReader),
    /// A key of a store (object storage, or a file found by the full resolution).
    Store {
        store: Arc<dyn ReadableStore>,
        key: StoreKey,
    },
}

impl Source {
    async fn read(&self, range: std::ops::Range<u64>) -> Result<Bytes, Error> {
        match self {
            Self::Open(reader) => {
                let reader = Arc::clone(reader);
                tokio::task::spawn_blocking(move || reader.read_blocking(range))
                    .await
                    .map_err(|e| Error::Io {
                        what: "a read task failed".into(),
                        source: std::io::Error::other(e),
                    })?
                    .map_err(Error::store)
            }
            Self::Store { store, key } => read(store, key, range).await,
        }
    }
}

/// The bytes `range` of an object (`body` when already read), in one piece when small,
/// streamed otherwise.
async fn object(
    source: Source,
    range: std::ops::Range<u64>,
    status: StatusCode,
    head_only: bool,
    body: Option<Bytes>,
) -> Result<Response<Body>, Error> {
    let len = range.end - range.start;
    let mut r = if head_only || len == 0 {
        empty(status)
    } else if len <= PIECE {
        let bytes = match body {
            Some(b) => b,
            None => source.read(range).await?,
        };
        Response::builder()
            .status(status)
            .body(Full::new(bytes).map_err(|e| match e {}).boxed_unsync())
            .unwrap_or_else(|_| empty(StatusCode::INTERNAL_SERVER_ERROR))
    } else {
        let pieces = futures::stream::iter(
            (range.start..range.end)
                .step_by(usize::try_from(PIECE).unwrap_or(usize::MAX))
                .map(move |s| s..(s + PIECE).min(range.end)),
        );
        let stream = pieces.then(move |piece| {
            let source = source.clone();
            async move {
                source
                    .read(piece)
                    .await
                    .map(Frame::data)
                    .map_err(|e| std::io::Error::other(e.to_string()))
            }
        });
        Response::builder()
            .status(status)
            .body(BodyExt::boxed_unsync(StreamBody::new(stream)))
            .unwrap_or_else(|_| empty(StatusCode::INTERNAL_SERVER_ERROR))
    };
    insert(&mut r, CONTENT_LENGTH, &len.to_string());
    Ok(r)
}

/// One read: on a blocking thread through the backend's blocking read where it has one
/// (POSIX, archives on POSIX), else through the async read.
async fn read(
    store: &Arc<dyn ReadableStore>,
    key: &StoreKey,
    range: std::ops::Range<u64>,
) -> Result<Bytes, Error> {
    let s = Arc::clone(store);
    let k = key.clone();
    let r = range.clone();
    let blocking = tokio::task::spawn_blocking(move || s.get_range_blocking(&k, r.into()))
        .await
        .map_err(|e| Error::Io {
            what: "a read task failed".into(),
            source: std::io::Error::other(e),
        })?;
    match blocking {
        Some(result) => result.map_err(Error::store),
        None => store
            .get_range(key, ByteRange::Bounded(range))
            .await
            .map_err(Error::store),
    }
}

fn wants_listing(req: &Request<hyper::body::Incoming>) -> bool {
    let query_list = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "list" || p.starts_with("list=")));
    let accept_json = req
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    query_list || accept_json
}

/// The media type of a file by its name.
fn content_type(segments: &[String]) -> HeaderValue {
    let name = segments.last().map(String::as_str).unwrap_or_default();
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    HeaderValue::from_static(match ext {
        "json" => "application/json",
        "tsv" => "text/tab-separated-values; charset=utf-8",
        "md" | "txt" | "rst" => "text/plain; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "bidsignore" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    })
}

fn allow() -> HeaderValue {
    HeaderValue::from_static("GET, HEAD, OPTIONS")
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn insert(r: &mut Response<Body>, name: http::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::new())
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    r
}

/// A whole body (no body for HEAD, with the length it would have).
fn full(status: StatusCode, bytes: Bytes, head_only: bool) -> Response<Body> {
    let len = bytes.len();
    let body = if head_only { Bytes::new() } else { bytes };
    let mut r = Response::new(Full::new(body).map_err(|e| match e {}).boxed_unsync());
    *r.status_mut() = status;
    insert(&mut r, CONTENT_LENGTH, &len.to_string());
    r
}

fn text(status: StatusCode, message: &str) -> Response<Body> {
    let mut r = full(status, Bytes::from(message.to_owned()), false);
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

fn not_found() -> Response<Body> {
    text(StatusCode::NOT_FOUND, "not found\n")
}

/// A backend failure: logged with its detail, answered without it (paths and backend
/// messages stay in the server's log).
fn server_error(e: &Error, path: &str) -> Response<Body> {
    tracing::error!(target: "strata_serve", path, error = %e, "request failed");
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the dataset's store failed to answer; the server log has the details\n",
    )
}
