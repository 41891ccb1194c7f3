#[derive(Clone, Debug)]
struct WrittenEntry {
    crc: u32,
    size: u64,
    header_offset: u64,
    flags: u16,
}

struct WriterState {
    out: Option<Box<dyn PutStream>>,
    offset: u64,
    entries: BTreeMap<String, WrittenEntry>,
    held: BTreeMap<String, Bytes>,
    data_written: bool,
    target: String,
}

impl WriterState {
    fn broken(&self) -> Error {
        Error::Corrupt {
            what: format!("zip archive {:?} being written", self.target),
            reason: "an earlier write failed; the archive cannot be completed, start it again"
                .into(),
        }
    }

    async fn emit(&mut self, bytes: Bytes) -> Result<()> {
        let n = bytes.len() as u64;
        let Some(out) = self.out.as_mut() else {
            return Err(self.broken());
        };
        if let Err(e) = out.write(bytes).await {
            self.out = None;
            return Err(e);
        }
        self.offset += n;
        Ok(())
    }

    /// Writes one whole entry (local header with sizes and CRC, then the data).
    async fn write_whole(&mut self, name: &str, data: Bytes) -> Result<()> {
        let crc = crc32fast::hash(&data);
        let size = data.len() as u64;
        let header_offset = self.offset;
        let flags = FLAG_UTF8;
        self.emit(local_header(name, flags, crc, Some(size)))
            .await?;
        self.emit(data).await?;
        self.entries.insert(
            name.to_owned(),
            WrittenEntry {
                crc,
                size,
                header_offset,
                flags,
            },
        );
        Ok(())
    }

    async fn put(&mut self, name: &str, data: Bytes) -> Result<()> {
        if is_metadata(name) && self.data_written {
            self.entries.remove(name);
            self.held.insert(name.to_owned(), data);
            return Ok(());
        }
        if !is_metadata(name) {
            self.data_written = true;
        }
        self.held.remove(name);
        self.write_whole(name, data).await
    }
}

fn local_header(name: &str, flags: u16, crc: u32, size: Option<u64>) -> Bytes {
    let mut b = BytesMut::with_capacity(30 + name.len() + 20);
    b.put_u32_le(LOCAL_SIG);
    b.put_u16_le(VERSION_ZIP64);
    b.put_u16_le(flags);
    b.put_u16_le(0); // stored
    b.put_u16_le(DOS_TIME);
    b.put_u16_le(DOS_DATE);
    b.put_u32_le(crc);
    b.put_u32_le(u32::MAX); // compressed size: in the ZIP64 extra field
    b.put_u32_le(u32::MAX); // uncompressed size: in the ZIP64 extra field
    b.put_u16_le(u16::try_from(name.len()).unwrap_or(u16::MAX));
    b.put_u16_le(20);
    b.put_slice(name.as_bytes());
    b.put_u16_le(0x0001);
    b.put_u16_le(16);
    // Streamed entries carry zeros here and their sizes in the data descriptor.
    b.put_u64_le(size.unwrap_or(0));
    b.put_u64_le(size.unwrap_or(0));
    b.freeze()
}

/// Writes an OME-Zarr hierarchy into one `.ozx` archive stored under a key of any writable
/// store. It is itself a [`WritableStore`] (keys inside the archive), so zarrs and the
/// converter write into it like into any store.
///
/// Entries are written one at a time: a [`PutStream`] from
/// [`put_stream`](WritableStore::put_stream) holds the archive until it completes, so
/// other writers wait (a task must not hold a stream and then call `put` itself).
/// Writing a key again replaces the entry in the central directory (the old bytes stay in
/// the file, unreferenced); deleting removes it from the directory.
pub struct OzxWriter {
    state: Arc<Mutex<WriterState>>,
    options: OzxOptions,
    target: String,
}

impl fmt::Debug for OzxWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OzxWriter")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl OzxWriter {
    /// Starts an archive that will be stored under `key` in `dst` when finished.
    ///
    /// # Errors
    /// When `dst` cannot start a streaming write.
    pub async fn create(
        dst: &dyn WritableStore,
        key: &StoreKey,
        options: OzxOptions,
    ) -> Result<Self> {
        let out = dst.put_stream(key).await?;
        Ok(Self {
            state: Arc::new(Mutex::new(WriterState {
                out: Some(out),
                offset: 0,
                entries: BTreeMap::new(),
                held: BTreeMap::new(),
                data_written: false,
                target: key.to_string(),
            })),
            options,
            target: key.to_string(),
        })
    }

    /// Writes held `zarr.json` entries, the central directory and the end records, and
    /// publishes the archive. Returns the archive's size in bytes.
    ///
    /// # Errors
    /// When writing fails or an entry stream is still open; nothing is published then.
    pub async fn finish(self) -> Result<u64> {
        let mut st = self.state.lock().await;
        let held = std::mem::take(&mut st.held);
        for (name, data) in held {
            st.write_whole(&name, data).await?;
        }
        let mut names: Vec<&String> = st.entries.keys().collect();
        names.sort_by(|a, b| cd_order(a, b));
        let mut cd = BytesMut::new();
        for name in &names {
            let Some(e) = st.entries.get(*name) else {
                continue;
            };
            cd.put_u32_le(CENTRAL_SIG);
            cd.put_u16_le(MADE_BY);
            cd.put_u16_le(VERSION_ZIP64);
            cd.put_u16_le(e.flags);
            cd.put_u16_le(0);
            cd.put_u16_le(DOS_TIME);
            cd.put_u16_le(DOS_DATE);
            cd.put_u32_le(e.crc);
            cd.put_u32_le(u32::MAX);
            cd.put_u32_le(u32::MAX);
            cd.put_u16_le(u16::try_from(name.len()).unwrap_or(u16::MAX));
            cd.put_u16_le(28);
            cd.put_u16_le(0); // comment
            cd.put_u16_le(0); // disk
            cd.put_u16_le(0); // internal attributes
            cd.put_u32_le(0o100_644 << 16); // regular file, rw-r--r--
            cd.put_u32_le(u32::MAX);
            cd.put_slice(name.as_bytes());
            cd.put_u16_le(0x0001);
            cd.put_u16_le(24);
            cd.put_u64_le(e.size);
            cd.put_u64_le(e.size);
            cd.put_u64_le(e.header_offset);
        }
        let count = names.len() as u64;
        let cd_offset = st.offset;
        let cd_size = cd.len() as u64;
        let eocd64_offset = cd_offset + cd_size;
        let comment = self.options.comment();
        let mut end = BytesMut::new();
        end.put_u32_le(EOCD64_SIG);
        end.put_u64_le(44);
        end.put_u16_le(MADE_BY);
        end.put_u16_le(VERSION_ZIP64);
        end.put_u32_le(0);
        end.put_u32_le(0);
        end.put_u64_le(count);
        end.put_u64_le(count);
        end.put_u64_le(cd_size);
        end.put_u64_le(cd_offset);
        end.put_u32_le(LOCATOR64_SIG);
        end.put_u32_le(0);
        end.put_u64_le(eocd64_offset);
        end.put_u32_le(1);
        end.put_u32_le(EOCD_SIG);
        end.put_u16_le(0);
        end.put_u16_le(0);
        let c16 = u16::try_from(count).unwrap_or(u16::MAX);
        end.put_u16_le(c16);
        end.put_u16_le(c16);
        end.put_u32_le(u32::try_from(cd_size).unwrap_or(u32::MAX));
        end.put_u32_le(u32::try_from(cd_offset).unwrap_or(u32::MAX));
        end.put_u16_le(u16::try_from(comment.len()).unwrap_or(0));
        end.put_slice(comment.as_bytes());
        st.emit(cd.freeze()).await?;
        st.emit(end.freeze()).await?;
        let out = st.out.take().ok_or_else(|| st.broken())?;
        out.complete().await
    }
}

#[async_trait]
impl WritableStore for OzxWriter {
    async fn put(&self, key: &StoreKey, value: Bytes) -> Result<()> {
        self.state.lock().await.put(key.as_str(), value).await
    }

    async fn put_stream(&self, key: &StoreKey) -> Result<Box<dyn PutStream>> {
        let mut guard = Arc::clone(&self.state).lock_owned().await;
        let name = key.to_string();
        if is_metadata(&name) {
            // Small documents: collected, then written like a `put`.
            return Ok(Box::new(EntryStream {
                guard: Some(guard),
                name,
                crc: crc32fast::Hasher::new(),
                size: 0,
                header_offset: 0,
                collect: Some(BytesMut::new()),
            }));
        }
        guard.data_written = true;
        let header_offset = guard.offset;
        guard
            .emit(local_header(&name, FLAG_UTF8 | FLAG_DESCRIPTOR, 0, None))
            .await?;
        Ok(Box::new(EntryStream {
            guard: Some(guard),
            name,
            crc: crc32fast::Hasher::new(),
            size: 0,
            header_offset,
            collect: None,
        }))
    }

    async fn delete(&self, key: &StoreKey) -> Result<()> {
        let mut st = self.state.lock().await;
        st.entries.remove(key.as_str());
        st.held.remove(key.as_str());
        Ok(())
    }

    async fn delete_prefix(&self, prefix: Option<&StoreKey>) -> Result<u64> {
        let mut st = self.state.lock().await;
        let under = |k: &String| StoreKey::new(k.as_str()).is_ok_and(|k| k.is_under(prefix));
        let before = st.entries.len() + st.held.len();
        st.entries.retain(|k, _| !under(k));
        st.held.retain(|k, _| !under(k));
        Ok((before - st.entries.len() - st.held.len()) as u64)
    }
}

/// One entry being streamed into an archive; holds the archive until it completes.
struct EntryStream {
    guard: Option<OwnedMutexGuard<WriterState>>,
    name: String,
    crc: crc32fast::Hasher,
    size: u64,
    header_offset: u64,
    collect: Option<BytesMut>,
}

impl fmt::Debug for EntryStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntryStream")
            .field("name", &self.name)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl EntryStream {
    fn state(&mut self) -> Result<&mut OwnedMutexGuard<WriterState>> {
        let name = self.name.clone();
        self.guard.as_mut().ok_or(Error::Corrupt {
            what: format!("zip entry {name:?}"),
            reason: "the entry stream is already closed".into(),
        })
    }
}

#[async_trait]
impl PutStream for EntryStream {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.size += chunk.len() as u64;
        if let Some(buf) = self.collect.as_mut() {
            buf.extend_from_slice(&chunk);
            return Ok(());
        }
        self.crc.update(&chunk);
        self.state()?.emit(chunk).await
    }

    async fn complete(mut self: Box<Self>) -> Result<u64> {
        let size = self.size;
        let name = self.name.clone();
        if let Some(buf) = self.collect.take() {
            self.state()?.put(&name, buf.freeze()).await?;
            return Ok(size);
        }
        let crc = std::mem::replace(&mut self.crc, crc32fast::Hasher::new()).finalize();
        let header_offset = self.header_offset;
        let st = self.state()?;
        let mut d = BytesMut::with_capacity(24);
        d.put_u32_le(DESCRIPTOR_SIG);
        d.put_u32_le(crc);
        d.put_u64_le(size);
        d.put_u64_le(size);
        st.emit(d.freeze()).await?;
        st.held.remove(&name);
        st.entries.insert(
            name,
            WrittenEntry {
                crc,
                size,
                header_offset,
                flags: FLAG_UTF8 | FLAG_DESCRIPTOR,
            },
        );
        Ok(size)
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        // The bytes written so far stay in the file, unreferenced by the central directory.
        Ok(())
    }
}

/// Copies every object under `prefix` of `src` into a new archive under `key` of `dst`,
/// `zarr.json` documents first (breadth-first), then the rest by key, streaming objects of
/// more than 1 MiB in ranges. Keys inside the archive are relative to `prefix`.
///
/// # Errors
/// The first read or write error; nothing is published then.
pub async fn pack<S>(
    src: &S,
    prefix: Option<&StoreKey>,
    dst: &dyn WritableStore,
    key: &StoreKey,
    options: OzxOptions,
) -> Result<u64>
where
    S: ReadableStore + ListableStore + ?Sized,
{
    let writer = OzxWriter::create(dst, key, options).await?;
    add_all(&writer, src, prefix).await?;
    writer.finish().await
}

/// Adds every object under `prefix` of `src` to an archive being written (keys relative to
/// `prefix`), `zarr.json` documents first, streaming objects of more than 1 MiB in ranges;
/// [`pack`] is this plus [`OzxWriter::create`] and [`OzxWriter::finish`].
///
/// # Errors
/// The first read or write error.
pub async fn add_all<S>(writer: &OzxWriter, src: &S, prefix: Option<&StoreKey>) -> Result<()>
where
    S: ReadableStore + ListableStore + ?Sized,
{
    // Small ranges keep a streamed conversion's finalisation (which copies the lower levels
    // in) near the converter's own memory: 30 x 4096^2 peaked at 34-44 MiB with 8 MiB
    // ranges, 34-35 MiB with 1 MiB, in the same time.
    const PIECE: u64 = 1 << 20;
    let list = src.list(prefix).await?;
    let mut list: Vec<(&str, &crate::traits::ObjectMeta)> = list
        .iter()
        .filter_map(|m| m.key.strip(prefix).map(|rel| (rel, m)))
        .collect();
    list.sort_by(|a, b| cd_order(a.0, b.0));
    for (rel, m) in list {
        let inner = StoreKey::new(rel)?;
        if m.size <= PIECE {
            writer.put(&inner, src.get(&m.key).await?).await?;
        } else {
            let mut s = writer.put_stream(&inner).await?;
            let mut off = 0;
            while off < m.size {
                let end = (off + PIECE).min(m.size);
                s.write(src.get_range(&m.key, (off..end).into()).await?)
                    .await?;
                off = end;
            }
            s.complete().await?;
        }
    }
    Ok(())
}

