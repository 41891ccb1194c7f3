//! What can go wrong in a batch.

use std::path::PathBuf;

/// A batch error: each names what is wrong and, where there is one, what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The folder map (MAP.tsv) or the scanner root does not describe a valid set of sections.
    #[error("{0}")]
    Plan(String),
    /// The manifest is not one `strata batch plan` wrote (or was edited into nonsense).
    #[error("manifest {}: {message} (write it again with `strata batch plan`)", path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A section's source changed since the manifest was written.
    #[error("{}: {message}", folder.display())]
    SourceChanged {
        /// The section's folder.
        folder: PathBuf,
        /// What changed and what to do.
        message: String,
    },
    /// A Slurm command is not installed.
    #[error(
        "{command} not found: install Slurm's client commands (Debian: slurm-client; a cluster: \
         module load slurm) or put them on PATH"
    )]
    SlurmMissing {
        /// The command.
        command: String,
    },
    /// A Slurm command failed (controller unreachable, request refused).
    #[error("{command} failed: {stderr} (is slurmctld reachable? check SLURM_CONF and `sinfo`)")]
    Slurm {
        /// The command line.
        command: String,
        /// What it printed.
        stderr: String,
    },
    /// The state database could not be used.
    #[error("state database {}: {source} (delete it: it is rebuilt from the dataset)", path.display())]
    Db {
        /// The database file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// The conversion of a section failed.
    #[error(transparent)]
    Convert(#[from] strata_zstack::Error),
    /// Saving into DataLad failed (or DataLad is missing: the message says what to install).
    #[error(transparent)]
    Datalad(#[from] strata_plan::Error),
    /// A label in the map is not a valid BIDS label.
    #[error("{0}")]
    Name(#[from] strata_bids::name::NameError),
}

impl Error {
    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<strata_fs::Error> for Error {
    fn from(e: strata_fs::Error) -> Self {
        let (path, source) = e.into_parts();
        Self::Io { path, source }
    }
}

/// A batch result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
