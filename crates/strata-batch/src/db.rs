//! The state cache: a small SQLite database beside the manifest, on the submitting node's
//! disk (never written by array tasks: SQLite's locking is not reliable on NFS or GPFS). It
//! remembers the jobs submitted, each section's attempts, last state, error and timing, so
//! that `status --cached` answers for 7,000 sections at once. Everything in it is
//! recomputable from the dataset, the task reports and the queue; a lost or damaged cache
//! is rebuilt by the next `status`.

use crate::error::{Error, Result};
use crate::state::{SectionState, State};
use rusqlite::{Connection, params};
use std::path::{Path, PathBuf};

/// An open state cache.
#[derive(Debug)]
pub struct StateDb {
    conn: Connection,
    path: PathBuf,
}

/// A section's row in the cache.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct CachedSection {
    /// The manifest index.
    pub index: usize,
    /// The source folder.
    pub folder: String,
    /// The state's name.
    pub state: String,
    /// The error, QC reasons or last log line, if any.
    pub detail: Option<String>,
    /// Times the section was submitted.
    pub attempts: u32,
    /// Seconds of the last finished task.
    pub seconds: Option<f64>,
    /// When the row was last updated (RFC 3339 UTC).
    pub updated: String,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    submitted TEXT NOT NULL,
    indices TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sections (
    idx INTEGER PRIMARY KEY,
    folder TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    detail TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    seconds REAL,
    updated TEXT NOT NULL DEFAULT ''
);
";

fn now() -> String {
    strata_zstack::convert::utc(std::time::SystemTime::now())
}

impl StateDb {
    /// Opens (or creates) the cache at `path`. A file that is not a cache of this schema is
    /// replaced by an empty one: nothing in it is the only copy.
    ///
    /// # Errors
    /// [`Error::Db`] if the file cannot be created.
    pub fn open(path: &Path) -> Result<Self> {
        let db_err = |source| Error::Db {
            path: path.to_owned(),
            source,
        };
        let open = || -> std::result::Result<Connection, rusqlite::Error> {
            let conn = Connection::open(path)?;
            conn.execute_batch(SCHEMA)?;
            Ok(conn)
        };
        let conn = match open() {
            Ok(c) => c,
            Err(_) if path.exists() => {
                std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
                open().map_err(db_err)?
            }
            Err(e) => return Err(db_err(e)),
        };
        Ok(Self {
            conn,
            path: path.to_owned(),
        })
    }

    fn err(&self, source: rusqlite::Error) -> Error {
        Error::Db {
            path: self.path.clone(),
            source,
        }
    }

    /// Runs `f` in one transaction, committed if it succeeds.
    fn in_transaction<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let path = self.path.clone();
        let db = |source| Error::Db {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(db)?;
        let out = f(&tx).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(out)
    }

    /// Records a submitted job and counts an attempt for each of its sections.
    ///
    /// # Errors
    /// [`Error::Db`].
    pub fn record_job(
        &mut self,
        job_id: &str,
        indices: &[usize],
        folders: &[String],
    ) -> Result<()> {
        let t = now();
        let list = indices
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        self.in_transaction(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO jobs (job_id, submitted, indices) VALUES (?1, ?2, ?3)",
                params![job_id, t, list],
            )?;
            for &i in indices {
                let folder = folders.get(i).map_or("", String::as_str);
                tx.execute(
                    "INSERT INTO sections (idx, folder, state, attempts, updated) VALUES (?1, ?2, 'queued', 1, ?3)
                     ON CONFLICT(idx) DO UPDATE SET attempts = attempts + 1, state = 'queued', updated = ?3",
                    params![i as i64, folder, t],
                )?;
            }
            Ok(())
        })
    }

    /// Stores the derived states of every section (one transaction).
    ///
    /// # Errors
    /// [`Error::Db`].
    pub fn update(&mut self, states: &[SectionState]) -> Result<()> {
        let t = now();
        self.in_transaction(|tx| {
            let mut stmt = tx.prepare(
                "INSERT INTO sections (idx, folder, state, detail, seconds, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(idx) DO UPDATE SET folder = ?2, state = ?3, detail = ?4,
                   seconds = coalesce(?5, seconds), updated = ?6",
            )?;
            for s in states {
                let detail = match &s.state {
                    State::QcFailed { reasons } => Some(reasons.join("; ")),
                    State::Failed { error } => Some(error.clone()),
                    State::Lost { last_line } => last_line.clone(),
                    _ => None,
                };
                stmt.execute(params![
                    s.index as i64,
                    s.folder,
                    s.state.name(),
                    detail,
                    s.seconds,
                    t
                ])?;
            }
            Ok(())
        })
    }

    /// Every section's cached row, by index.
    ///
    /// # Errors
    /// [`Error::Db`].
    pub fn sections(&self) -> Result<Vec<CachedSection>> {
        let run = || -> std::result::Result<Vec<CachedSection>, rusqlite::Error> {
            let mut stmt = self.conn.prepare(
                "SELECT idx, folder, state, detail, attempts, seconds, updated FROM sections ORDER BY idx",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(CachedSection {
                    index: usize::try_from(r.get::<_, i64>(0)?).unwrap_or(usize::MAX),
                    folder: r.get(1)?,
                    state: r.get(2)?,
                    detail: r.get(3)?,
                    attempts: u32::try_from(r.get::<_, i64>(4)?).unwrap_or(u32::MAX),
                    seconds: r.get(5)?,
                    updated: r.get(6)?,
                })
            })?;
            rows.collect()
        };
        run().map_err(|e| self.err(e))
    }

    /// The ids of the jobs submitted, oldest first.
    ///
    /// # Errors
    /// [`Error::Db`].
    pub fn jobs(&self) -> Result<Vec<String>> {
        let run = || -> std::result::Result<Vec<String>, rusqlite::Error> {
            let mut stmt = self
                .conn
                .prepare("SELECT job_id FROM jobs ORDER BY submitted, job_id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect()
        };
        run().map_err(|e| self.err(e))
    }
}
