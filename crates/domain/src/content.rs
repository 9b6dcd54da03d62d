//! Document bytes as a stream of chunks: uploads written to the store as they arrive, and
//! downloads read from it chunk by chunk, so that the service's memory does not grow with the
//! size of the documents it carries (SPEC §8: bytes live apart from process rows).
//!
//! An upload of at most [`CHUNK_BYTES`] is kept whole and written by the creation that uses it
//! ([`NewContent::Inline`]), as one chunk. A larger one is *staged*: each full chunk goes to
//! the store as it arrives ([`crate::ports::SignerProcessRepository::stage_chunk`]), under a
//! fresh [`ContentId`]; the creation then *adopts* the staged bytes in its own transaction
//! ([`NewContent::Staged`]). Bytes of a refused upload (over a limit, a malformed body, a
//! refused creation) are discarded as soon as the request gives up on them; bytes a crash left
//! behind are removed by the sweep of staged contents older than a body may take to arrive.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sha2::Digest;

use crate::ids::ContentId;
use crate::ports::{IdGenerator, RepositoryError, SignerProcessRepository};
use crate::service::{DocumentUpload, InvalidUpload};
use crate::text::Text;

/// Size of a stored chunk in bytes (64 KiB); the last chunk of a content may be shorter.
/// Also the largest upload kept whole in memory until its creation writes it.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// The bytes of a new document, as its creation stores them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewContent {
    /// Received whole (at most [`CHUNK_BYTES`]): the creation writes them, as one chunk.
    Inline(Vec<u8>),
    /// Staged in the store chunk by chunk while they arrived: the creation adopts them.
    Staged(StagedContent),
}

impl NewContent {
    /// The bytes, when they are inline.
    #[must_use]
    pub fn inline(&self) -> Option<&[u8]> {
        match self {
            Self::Inline(bytes) => Some(bytes),
            Self::Staged(_) => None,
        }
    }

    /// Size in bytes.
    #[must_use]
    pub fn size(&self) -> u64 {
        match self {
            Self::Inline(bytes) => bytes.len() as u64,
            Self::Staged(staged) => staged.size(),
        }
    }
}

/// Bytes staged in the store under [`Self::id`], not yet adopted by a document. When the last
/// clone is dropped before [`Self::adopted`] is called, the staged bytes are discarded (in a
/// task of their own; a failure is logged and left to the sweep): a refused upload leaves
/// nothing behind.
#[derive(Clone)]
pub struct StagedContent {
    inner: Arc<Staged>,
}

struct Staged {
    id: ContentId,
    size: u64,
    chunks: u32,
    adopted: AtomicBool,
    repository: Arc<dyn SignerProcessRepository>,
}

impl StagedContent {
    /// The id the chunks are staged under.
    #[must_use]
    pub fn id(&self) -> &ContentId {
        &self.inner.id
    }

    /// Size in bytes.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.inner.size
    }

    /// Number of chunks staged (numbered from 0).
    #[must_use]
    pub fn chunks(&self) -> u32 {
        self.inner.chunks
    }

    /// Marks the bytes as adopted by a committed creation: they are no longer discarded.
    pub fn adopted(&self) {
        self.inner.adopted.store(true, Ordering::Release);
    }
}

impl std::fmt::Debug for StagedContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedContent").field("id", &self.inner.id).field("size", &self.inner.size).finish()
    }
}

impl PartialEq for StagedContent {
    fn eq(&self, other: &Self) -> bool {
        self.inner.id == other.inner.id
    }
}

impl Eq for StagedContent {}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.adopted.load(Ordering::Acquire) {
            discard_later(self.repository.clone(), self.id.clone(), None);
        }
    }
}

/// A chunk being staged: its buffer back, and how the write ended.
type Staging = tokio::task::JoinHandle<(Vec<u8>, Result<(), RepositoryError>)>;

/// Discards staged bytes in a task of their own (a drop cannot wait), once the write `after`
/// (a chunk still being staged) has ended; without a runtime, or when the store fails, the
/// sweep removes them later.
fn discard_later(repository: Arc<dyn SignerProcessRepository>, id: ContentId, after: Option<Staging>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    runtime.spawn(async move {
        if let Some(staging) = after {
            let _ = staging.await;
        }
        if let Err(error) = repository.discard_staged(&id).await {
            tracing::warn!(content_id = %id, %error, "staged document bytes could not be discarded; the sweep removes them");
        }
    });
}

/// Receives one uploaded document chunk by chunk: computes its size and SHA-256 on the way,
/// keeps at most [`CHUNK_BYTES`] in memory (one buffer, reused), and stages every full chunk
/// in the store as soon as more bytes follow it. Size limits are the caller's (it counts
/// before it writes). Dropping the writer before [`Self::finish`] discards what was staged.
pub struct UploadWriter {
    /// `None`: every byte kept in memory ([`Self::whole`]).
    repository: Option<Arc<dyn SignerProcessRepository>>,
    ids: Arc<dyn IdGenerator>,
    staged: Option<ContentId>,
    /// The chunk being staged, in a task of its own: a request dropped meanwhile (its client
    /// gone, its body time-out) cannot cut the write short, and the discard waits for it, so
    /// that a write that lands late leaves nothing behind.
    in_flight: Option<Staging>,
    buffer: Vec<u8>,
    chunks: u32,
    size: u64,
    head: Vec<u8>,
    hasher: sha2::Sha256,
}

/// How many leading bytes an upload's checks look at (`%PDF-`, ISO 32000-2 §7.5.2).
const HEAD_BYTES: usize = 8;

impl UploadWriter {
    pub(crate) fn new(repository: Arc<dyn SignerProcessRepository>, ids: Arc<dyn IdGenerator>) -> Self {
        Self::with(Some(repository), ids)
    }

    /// A writer that keeps every byte in memory and never stages ([`NewContent::Inline`] of
    /// any size): for tools and tests of body parsing without a store.
    #[must_use]
    pub fn whole() -> Self {
        struct NoIds;
        impl IdGenerator for NoIds {
            fn random_160(&self) -> [u8; 20] {
                [0; 20]
            }
        }
        Self::with(None, Arc::new(NoIds))
    }

    fn with(repository: Option<Arc<dyn SignerProcessRepository>>, ids: Arc<dyn IdGenerator>) -> Self {
        Self {
            repository,
            ids,
            staged: None,
            in_flight: None,
            buffer: Vec::new(),
            chunks: 0,
            size: 0,
            head: Vec::with_capacity(HEAD_BYTES),
            hasher: sha2::Sha256::new(),
        }
    }

    /// Bytes received so far.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends the next bytes of the document, staging each chunk that is full and followed
    /// by more.
    ///
    /// # Errors
    /// [`RepositoryError`] when a chunk cannot be staged; what was staged is discarded when
    /// the writer is dropped.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), RepositoryError> {
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        let wanted = HEAD_BYTES.saturating_sub(self.head.len()).min(bytes.len());
        self.head.extend_from_slice(&bytes[..wanted]);
        if self.repository.is_none() {
            self.buffer.extend_from_slice(bytes);
            return Ok(());
        }
        // One buffer of one chunk, reused: a full chunk is staged once more bytes follow it.
        let mut rest = bytes;
        while !rest.is_empty() {
            if self.buffer.len() == CHUNK_BYTES {
                self.stage_buffer().await?;
            }
            let room = CHUNK_BYTES - self.buffer.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            if self.buffer.len() + now.len() > self.buffer.capacity() {
                // Straight to one chunk's capacity: it never grows past it.
                self.buffer.reserve_exact(CHUNK_BYTES - self.buffer.len());
            }
            self.buffer.extend_from_slice(now);
            rest = later;
        }
        Ok(())
    }

    /// Stages the buffer as the next chunk and empties it (keeping its memory).
    async fn stage_buffer(&mut self) -> Result<(), RepositoryError> {
        let id = match &self.staged {
            Some(id) => id.clone(),
            None => {
                let id = ContentId::from_random(self.ids.random_160());
                self.staged = Some(id.clone());
                id
            }
        };
        let Some(repository) = self.repository.clone() else { unreachable!("only a writer with a store stages") };
        let (seq, buffer) = (self.chunks, std::mem::take(&mut self.buffer));
        self.chunks += 1;
        let staging = self.in_flight.insert(tokio::spawn(async move {
            let written = repository.stage_chunk(&id, seq, &buffer).await;
            (buffer, written)
        }));
        let joined = staging.await;
        self.in_flight = None;
        let (mut buffer, written) = joined.map_err(|e| RepositoryError::Unexpected(e.into()))?;
        buffer.clear();
        self.buffer = buffer;
        written
    }

    /// The checked upload: its bytes inline when they fit one chunk, otherwise staged (the
    /// last chunk staged now). `file_names` and `declared_type` as for [`DocumentUpload::new`].
    ///
    /// # Errors
    /// `Err` when the last chunk cannot be staged; `Ok(Err)` when the upload is refused
    /// ([`InvalidUpload`]); what was staged is discarded in both cases.
    pub async fn finish(
        mut self,
        declared_type: Option<Text>,
        file_names: Vec<Text>,
    ) -> Result<Result<DocumentUpload, InvalidUpload>, RepositoryError> {
        let sha256 = data_encoding::HEXLOWER.encode(&std::mem::take(&mut self.hasher).finalize());
        let content = if self.staged.is_none() {
            let mut bytes = std::mem::take(&mut self.buffer);
            bytes.shrink_to_fit();
            NewContent::Inline(bytes)
        } else {
            if !self.buffer.is_empty() {
                self.stage_buffer().await?;
            }
            // Taken only now: until here, dropping the writer discards what was staged.
            let (Some(id), Some(repository)) = (self.staged.take(), self.repository.clone()) else {
                unreachable!("staged above, by a writer with a store")
            };
            NewContent::Staged(StagedContent {
                inner: Arc::new(Staged {
                    id,
                    size: self.size,
                    chunks: self.chunks,
                    adopted: AtomicBool::new(false),
                    repository,
                }),
            })
        };
        Ok(DocumentUpload::new(declared_type, file_names, sha256, &self.head, content))
    }
}

impl Drop for UploadWriter {
    fn drop(&mut self) {
        if let (Some(id), Some(repository)) = (self.staged.take(), &self.repository) {
            discard_later(repository.clone(), id, self.in_flight.take());
        }
    }
}

impl std::fmt::Debug for UploadWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadWriter").field("staged", &self.staged).field("size", &self.size).finish()
    }
}

/// How many chunks one read of a content takes at most (4 × 64 KiB).
pub const READ_CHUNKS: u32 = 4;

/// How often [`ContentReader::open`] looks a document's content up again when the content it
/// found was replaced (a signature) or deleted before its first read.
const OPEN_ATTEMPTS: usize = 3;

/// What the next read of a content gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunks {
    /// The next chunks, in order (at most [`READ_CHUNKS`]).
    More(Vec<Vec<u8>>),
    /// The end: every byte of the content was read.
    End,
    /// The content ended before its size: a signature replaced it, or its document was
    /// deleted, while it was read.
    Changed,
}

/// Reads one document's content chunk by chunk, [`READ_CHUNKS`] per read (O10 streams it, the
/// signing work collects it): one content from the first read to the last, so the bytes are
/// never a mixture of two; a content that ends before its size is reported
/// ([`Chunks::Changed`]).
pub struct ContentReader {
    repository: Arc<dyn SignerProcessRepository>,
    content: crate::process::DocumentContent,
    first: Option<Vec<Vec<u8>>>,
    next: u32,
    read: u64,
    exhausted: bool,
}

impl ContentReader {
    /// Opens the content that `current` finds (`None`: no such document) and makes its first
    /// read; a content gone at that read is looked up again, so that a reader starts on the
    /// new bytes, or finds no document.
    ///
    /// # Errors
    /// [`RepositoryError`]; [`RepositoryError::Unavailable`] when the content keeps changing.
    pub(crate) async fn open(
        repository: &Arc<dyn SignerProcessRepository>,
        current: impl AsyncFn() -> Result<Option<crate::process::DocumentContent>, RepositoryError>,
    ) -> Result<Option<Self>, RepositoryError> {
        for _ in 0..OPEN_ATTEMPTS {
            let Some(content) = current().await? else { return Ok(None) };
            let mut reader =
                Self { repository: repository.clone(), content, first: None, next: 0, read: 0, exhausted: false };
            match reader.read().await? {
                Chunks::More(first) => {
                    reader.first = Some(first);
                    return Ok(Some(reader));
                }
                Chunks::Changed => {}
                Chunks::End => unreachable!("a first read never ends without bytes: empty contents are never stored"),
            }
        }
        Err(RepositoryError::Unavailable("the document's bytes kept changing while they were opened".into()))
    }

    /// The content read: media type, size, id.
    #[must_use]
    pub fn content(&self) -> &crate::process::DocumentContent {
        &self.content
    }

    /// Whether the bytes start with `prefix` (of at most one chunk's length).
    #[must_use]
    pub fn starts_with(&self, prefix: &[u8]) -> bool {
        self.first.as_ref().and_then(|f| f.first()).is_some_and(|chunk| chunk.starts_with(prefix))
    }

    /// The next chunks.
    ///
    /// # Errors
    /// [`RepositoryError`].
    pub async fn next_chunks(&mut self) -> Result<Chunks, RepositoryError> {
        match self.first.take() {
            Some(first) => Ok(Chunks::More(first)),
            None => self.read().await,
        }
    }

    async fn read(&mut self) -> Result<Chunks, RepositoryError> {
        if self.exhausted {
            return Ok(Chunks::End);
        }
        let chunks = self.repository.content_chunks(&self.content.content, self.next, READ_CHUNKS).await?;
        self.exhausted = chunks.len() < READ_CHUNKS as usize;
        self.next += u32::try_from(chunks.len()).unwrap_or(u32::MAX);
        self.read += chunks.iter().map(|c| c.len() as u64).sum::<u64>();
        let complete = if self.exhausted { self.read == self.content.size } else { self.read <= self.content.size };
        Ok(match () {
            () if !complete => Chunks::Changed,
            () if chunks.is_empty() => Chunks::End,
            () => Chunks::More(chunks),
        })
    }
}

impl std::fmt::Debug for ContentReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentReader").field("content", &self.content).field("next", &self.next).finish()
    }
}
