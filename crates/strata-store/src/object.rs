//! Backend over any [`object_store::ObjectStore`]: S3 (and S3-compatible servers), local
//! files, memory.
//!
//! Single puts are atomic on every object store; streaming puts use multipart upload (the
//! object appears only when the upload completes).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use crate::error::{Error, Result};
use crate::key::StoreKey;
use crate::traits::{
    ByteRange, DirListing, ListableStore, ObjectHead, ObjectMeta, PutStream, ReadableStore,
    WritableStore,
};

/// Default multipart part size (S3 needs at least 5 MiB for all parts but the last).
pub const DEFAULT_PART_SIZE: usize = 8 << 20;

/// A store backed by an [`object_store::ObjectStore`], optionally under a key prefix.
#[derive(Clone)]
pub struct ObjectStoreBackend {
    inner: Arc<dyn ObjectStore>,
    prefix: Option<String>,
    part_size: usize,
    max_parts_in_flight: usize,
}

// Only the store's display name (e.g. the bucket) and the prefix: never credentials.
impl fmt::Debug for ObjectStoreBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreBackend")
            .field("store", &self.inner.to_string())
            .field("prefix", &self.prefix)
            .field("part_size", &self.part_size)
            .finish_non_exhaustive()
    }
}

/// How to reach an S3 bucket. Credentials are never part of it: they come from the standard
/// environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
/// ...) or instance metadata, as `object_store::aws::AmazonS3Builder::from_env` reads them.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct S3Options {
    /// The bucket.
    pub bucket: String,
    /// Endpoint URL of an S3-compatible server (`http://127.0.0.1:5055`); `None` for AWS.
    pub endpoint: Option<String>,
    /// Region; `None` takes `AWS_DEFAULT_REGION`/`AWS_REGION` or `us-east-1`.
    pub region: Option<String>,
    /// Allow plain `http://` endpoints (loopback test servers).
    pub allow_http: bool,
    /// Retries of a failed request (`None`: object_store's default, 10).
    pub max_retries: Option<usize>,
    /// Give up retrying a request after this long (`None`: object_store's default, 3 min).
    pub retry_timeout: Option<std::time::Duration>,
    /// Send unsigned requests (public buckets, local test servers); no credentials needed.
    pub unsigned: bool,
    /// Time limit of one request, from connecting to the end of the answer (`None`:
    /// object_store's default, 30 s); a request over it fails and is retried.
    pub request_timeout: Option<std::time::Duration>,
}

impl S3Options {
    /// Options for `bucket` on AWS.
    #[must_use]
    pub fn new(bucket: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            ..Self::default()
        }
    }

    /// Options for `bucket`, the endpoint taken from `STRATA_S3_ENDPOINT` or
    /// `AWS_ENDPOINT_URL` when set (plain HTTP then allowed if the URL says `http://`), retries
    /// from `STRATA_S3_MAX_RETRIES` and `STRATA_S3_RETRY_TIMEOUT_SECS`, the time limit of one
    /// request from `STRATA_S3_TIMEOUT_SECS`, when set.
    #[must_use]
    pub fn from_env(bucket: impl Into<String>) -> Self {
        let endpoint = ["STRATA_S3_ENDPOINT", "AWS_ENDPOINT_URL"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()));
        let allow_http = endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        let num = |v: &str| {
            std::env::var(v)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
        };
        Self {
            bucket: bucket.into(),
            endpoint,
            region: None,
            allow_http,
            max_retries: num("STRATA_S3_MAX_RETRIES").and_then(|n| usize::try_from(n).ok()),
            retry_timeout: num("STRATA_S3_RETRY_TIMEOUT_SECS").map(std::time::Duration::from_secs),
            unsigned: false,
            request_timeout: num("STRATA_S3_TIMEOUT_SECS").map(std::time::Duration::from_secs),
        }
    }

    /// Sets the endpoint.
    #[must_use]
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Sets the region.
    #[must_use]
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sets how often and how long a failed request is retried (fail fast when a server is
    /// down, or ride out outages).
    #[must_use]
    pub fn retries(mut self, max_retries: usize, timeout: std::time::Duration) -> Self {
        self.max_retries = Some(max_retries);
        self.retry_timeout = Some(timeout);
        self
    }

    /// Sends unsigned requests (no credentials).
    #[must_use]
    pub fn unsigned(mut self, on: bool) -> Self {
        self.unsigned = on;
        self
    }

    /// Allows or forbids plain HTTP.
    #[must_use]
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }
}

fn backend_err(
    op: &'static str,
    key: &str,
    store: &dyn ObjectStore,
    e: object_store::Error,
) -> Error {
    match e {
        // On a write, "not found" is the bucket (or the container), never the object.
        object_store::Error::NotFound { .. } if matches!(op, "put" | "put_stream") => {
            Error::Backend {
                op,
                key: key.to_owned(),
                store: store.to_string(),
                source: format!("{e}; check that the bucket exists and the endpoint is right")
                    .into(),
            }
        }
        object_store::Error::NotFound { .. } => Error::NotFound {
            key: key.to_owned(),
            store: store.to_string(),
        },
        other => Error::Backend {
            op,
            key: key.to_owned(),
            store: store.to_string(),
            source: Box::new(other),
        },
    }
}

impl ObjectStoreBackend {
    /// Wraps any object store.
    #[must_use]
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            prefix: None,
            part_size: DEFAULT_PART_SIZE,
            max_parts_in_flight: 4,
        }
    }

    /// An in-memory store (tests, caches).
    #[must_use]
    pub fn memory() -> Self {
        Self::new(Arc::new(object_store::memory::InMemory::new()))
    }

    /// `object_store`'s local file-system store rooted at an existing directory.
    ///
    /// # Errors
    /// [`Error::Config`] when the directory does not exist.
    pub fn local(root: impl AsRef<std::path::Path>) -> Result<Self> {
        let root = root.as_ref();
        let fs = object_store::local::LocalFileSystem::new_with_prefix(root).map_err(|e| {
            Error::Config {
                reason: format!("cannot open local object store at {root:?}: {e}"),
            }
        })?;
        Ok(Self::new(Arc::new(fs)))
    }

    /// An S3 (or S3-compatible) bucket.
    ///
    /// # Errors
    /// [`Error::Config`] when the options are incomplete (for example no bucket).
    pub fn s3(options: &S3Options) -> Result<Self> {
        if options.bucket.is_empty() {
            return Err(Error::Config {
                reason: "S3 store needs a bucket name".into(),
            });
        }
        // With a custom endpoint (an S3-compatible server), credentials must come from the
        // environment: never fall back to the cloud instance-metadata service.
        let env_credentials = [
            "AWS_ACCESS_KEY_ID",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        ]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
        if options.endpoint.is_some() && !options.unsigned && !env_credentials {
            return Err(Error::Config {
                reason: format!(
                    "no credentials for S3 bucket {:?} at {}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or use unsigned requests)",
                    options.bucket,
                    options.endpoint.as_deref().unwrap_or_default()
                ),
            });
        }
        let mut b = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&options.bucket)
            .with_allow_http(options.allow_http);
        if let Some(e) = &options.endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(r) = &options.region {
            b = b.with_region(r);
        }
        if options.unsigned {
            b = b.with_skip_signature(true);
        }
        if let Some(t) = options.request_timeout {
            // The client options replace the builder's: say plain HTTP again.
            b = b.with_client_options(
                object_store::ClientOptions::new()
                    .with_allow_http(options.allow_http)
                    .with_timeout(t),
            );
        }
        if options.max_retries.is_some() || options.retry_timeout.is_some() {
            let mut retry = object_store::RetryConfig::default();
            if let Some(n) = options.max_retries {
                retry.max_retries = n;
            }
            if let Some(t) = options.retry_timeout {
                retry.retry_timeout = t;
            }
            b = b.with_retry(retry);
        }
        let s3 = b.build().map_err(|e| Error::Config {
            reason: format!("cannot configure S3 bucket {:?}: {e}", options.bucket),
        })?;
        Ok(Self::new(Arc::new(s3)))
    }

    /// Puts every key under `prefix` (a `/`-separated key prefix inside the bucket).
    #[must_use]
    pub fn with_prefix(mut self, prefix: &StoreKey) -> Self {
        self.prefix = Some(prefix.to_string());
        self
    }

    /// Sets the multipart part size for streaming puts (at least 5 MiB).
    #[must_use]
    pub fn with_part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes.max(5 << 20);
        self
    }

    /// Sets how many parts of one streaming put may upload at once (memory is bounded by
    /// `parts * part_size`).
    #[must_use]
    pub fn with_max_parts_in_flight(mut self, n: usize) -> Self {
        self.max_parts_in_flight = n.max(1);
        self
    }

    /// The wrapped object store.
    #[must_use]
    pub fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    fn path(&self, key: &StoreKey) -> Result<Path> {
        let full = match &self.prefix {
            Some(p) => format!("{p}/{key}"),
            None => key.to_string(),
        };
        Path::parse(&full).map_err(|e| Error::invalid_key(key.as_str(), e.to_string()))
    }

    /// The backend path of a listing prefix (this store's own prefix included).
    fn prefix_path(&self, prefix: Option<&StoreKey>) -> Result<Option<Path>> {
        let full = match (&self.prefix, prefix) {
            (Some(p), Some(k)) => Some(format!("{p}/{k}")),
            (Some(p), None) => Some(p.clone()),
            (None, Some(k)) => Some(k.to_string()),
            (None, None) => None,
        };
        full.map(|f| Path::parse(&f).map_err(|e| Error::invalid_key(&f, e.to_string())))
            .transpose()
    }

    fn key_of(&self, location: &Path) -> Option<StoreKey> {
        let raw = location.as_ref();
        let rel = match &self.prefix {
            Some(p) => raw.strip_prefix(p.as_str())?.strip_prefix('/')?,
            None => raw,
        };
        StoreKey::new(rel).ok()
    }

    fn err(&self, op: &'static str, key: &str, e: object_store::Error) -> Error {
        backend_err(op, key, self.inner.as_ref(), e)
    }
}

#[async_trait]
impl ReadableStore for ObjectStoreBackend {
    async fn get(&self, key: &StoreKey) -> Result<Bytes> {
        let path = self.path(key)?;
        let r = self
            .inner
            .get(&path)
            .await
            .map_err(|e| self.err("get", key.as_str(), e))?;
        r.bytes()
            .await
            .map_err(|e| self.err("get", key.as_str(), e))
    }

    async fn get_range(&self, key: &StoreKey, range: ByteRange) -> Result<Bytes> {
        let path = self.path(key)?;
        let get_range = match &range {
            ByteRange::Bounded(r) if r.start >= r.end => {
                // Empty (or reversed) ranges: object stores reject them; validate locally.
                let size = self.size(key).await?;
                range.resolve(key, size)?;
                return Ok(Bytes::new());
            }
            ByteRange::Bounded(r) => GetRange::Bounded(r.clone()),
            ByteRange::From(s) => GetRange::Offset(*s),
            ByteRange::Suffix(0) => {
                self.size(key).await?;
                return Ok(Bytes::new());
            }
            ByteRange::Suffix(n) => GetRange::Suffix(*n),
        };
        let opts = GetOptions::new().with_range(Some(get_range));
        let result = match self.inner.get_opts(&path, opts).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(Error::NotFound {
                    key: key.to_string(),
                    store: self.inner.to_string(),
                });
            }
            Err(e) => {
                // An unsatisfiable range: report it as such when the object exists.
                let size = self.size(key).await?;
                range.resolve(key, size)?;
                return Err(self.err("get_range", key.as_str(), e));
            }
        };
        let size = result.meta.size;
        let want = range.resolve(key, size)?;
        let bytes = result
            .bytes()
            .await
            .map_err(|e| self.err("get_range", key.as_str(), e))?;
        if bytes.len() as u64 != want.end - want.start {
            return Err(Error::InvalidRange {
                key: key.to_string(),
                range: range.to_string(),
                size,
            });
        }
        Ok(bytes)
    }

    async fn size(&self, key: &StoreKey) -> Result<u64> {
        Ok(self.head(key).await?.size)
    }

    async fn head(&self, key: &StoreKey) -> Result<ObjectHead> {
        let path = self.path(key)?;
        let meta = self
            .inner
            .head(&path)
            .await
            .map_err(|e| self.err("head", key.as_str(), e))?;
        Ok(ObjectHead::sized(meta.size)
            .with_modified(Some(meta.last_modified.into()))
            .with_version(meta.e_tag.or(meta.version)))
    }

    fn location(&self) -> String {
        match &self.prefix {
            Some(p) => format!("{}/{p}", self.inner),
            None => self.inner.to_string(),
        }
    }
}

#[async_trait]
impl WritableStore for ObjectStoreBackend {
    async fn delete_prefix(&self, prefix: Option<&StoreKey>) -> Result<u64> {
        let list = self.list(prefix).await?;
        for m in &list {
            self.delete(&m.key).await?;
        }
        Ok(list.len() as u64)
    }

    async fn put(&self, key: &StoreKey, value: Bytes) -> Result<()> {
        let path = self.path(key)?;
        self.inner
            .put(&path, PutPayload::from_bytes(value))
            .await
            .map_err(|e| self.err("put", key.as_str(), e))?;
        strata_fs::failpoint("store.s3.put");
        Ok(())
    }

    async fn put_stream(&self, key: &StoreKey) -> Result<Box<dyn PutStream>> {
        let path = self.path(key)?;
        let upload = self
            .inner
            .put_multipart(&path)
            .await
            .map_err(|e| self.err("put_stream", key.as_str(), e))?;
        Ok(Box::new(MultipartPutStream {
            writer: Some(WriteMultipart::new_with_chunk_size(upload, self.part_size)),
            key: key.to_string(),
            store: Arc::clone(&self.inner),
            max_in_flight: self.max_parts_in_flight,
            written: 0,
        }))
    }

    async fn delete(&self, key: &StoreKey) -> Result<()> {
        let path = self.path(key)?;
        match self.inner.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err("delete", key.as_str(), e)),
        }
    }
}

#[async_trait]
impl ListableStore for ObjectStoreBackend {
    async fn list(&self, prefix: Option<&StoreKey>) -> Result<Vec<ObjectMeta>> {
        let label = prefix.map(ToString::to_string).unwrap_or_default();
        let path = self.prefix_path(prefix)?;
        let metas: Vec<object_store::ObjectMeta> = self
            .inner
            .list(path.as_ref())
            .try_collect()
            .await
            .map_err(|e| self.err("list", &label, e))?;
        let mut out: Vec<ObjectMeta> = metas
            .iter()
            .filter_map(|m| {
                self.key_of(&m.location)
                    .filter(|k| k.is_under(prefix))
                    .map(|key| ObjectMeta { key, size: m.size })
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn list_dir(&self, prefix: Option<&StoreKey>) -> Result<DirListing> {
        let label = prefix.map(ToString::to_string).unwrap_or_default();
        let path = self.prefix_path(prefix)?;
        let result = self
            .inner
            .list_with_delimiter(path.as_ref())
            .await
            .map_err(|e| self.err("list_dir", &label, e))?;
        let mut out = DirListing::default();
        for m in &result.objects {
            if let Some(key) = self.key_of(&m.location).filter(|k| k.is_under(prefix)) {
                out.objects.push(ObjectMeta { key, size: m.size });
            }
        }
        for p in &result.common_prefixes {
            if let Some(name) = p.filename().filter(|n| StoreKey::new(*n).is_ok()) {
                out.folders.push(name.to_owned());
            }
        }
        out.objects.sort_by(|a, b| a.key.cmp(&b.key));
        out.folders.sort();
        Ok(out)
    }
}

/// A streaming put as a multipart upload.
struct MultipartPutStream {
    writer: Option<WriteMultipart>,
    key: String,
    store: Arc<dyn ObjectStore>,
    max_in_flight: usize,
    written: u64,
}

impl fmt::Debug for MultipartPutStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultipartPutStream")
            .field("key", &self.key)
            .field("store", &self.store.to_string())
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl MultipartPutStream {
    fn writer(&mut self) -> Result<&mut WriteMultipart> {
        let (key, store) = (&self.key, &self.store);
        self.writer.as_mut().ok_or_else(|| Error::Backend {
            op: "put_stream",
            key: key.clone(),
            store: store.to_string(),
            source: "the upload already failed; start a new one".into(),
        })
    }
}

#[async_trait]
impl PutStream for MultipartPutStream {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        let max = self.max_in_flight;
        let (key, store) = (self.key.clone(), Arc::clone(&self.store));
        let w = self.writer()?;
        // Bound memory: wait until fewer than `max` parts are uploading.
        if let Err(e) = w.wait_for_capacity(max).await {
            if let Some(w) = self.writer.take() {
                let _ = w.abort().await;
            }
            return Err(backend_err("put_stream", &key, store.as_ref(), e));
        }
        self.written += chunk.len() as u64;
        self.writer()?.put(chunk);
        Ok(())
    }

    async fn complete(mut self: Box<Self>) -> Result<u64> {
        let w = self.writer.take().ok_or_else(|| Error::Backend {
            op: "put_stream",
            key: self.key.clone(),
            store: self.store.to_string(),
            source: "the upload already failed; start a new one".into(),
        })?;
        strata_fs::failpoint("store.s3.before-complete");
        w.finish()
            .await
            .map_err(|e| backend_err("put_stream", &self.key, self.store.as_ref(), e))?;
        strata_fs::failpoint("store.s3.completed");
        Ok(self.written)
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        if let Some(w) = self.writer.take() {
            w.abort()
                .await
                .map_err(|e| backend_err("abort", &self.key, self.store.as_ref(), e))?;
        }
        Ok(())
    }
}
