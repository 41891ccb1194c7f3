//! TSV tables: `participants.tsv`, `samples.tsv`, `sub-<label>_sessions.tsv`.
//!
//! Rows are added by an atomic read-modify-write ([`strata_fs::update_locked`]): an exclusive
//! lock on a hidden lock file next to the table, a read, the change, a write to a hidden
//! temporary file, fsync, and a rename over the table. Two processes converting different sections at once both land their rows,
//! and a reader never sees a half-written table.

use crate::error::{Error, Result};
use crate::name::Label;
use crate::schema::generated;
use std::path::{Path, PathBuf};

/// The value BIDS uses for a missing cell.
pub const NA: &str = "n/a";

/// An in-memory TSV table: a header and rows of equal length.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with the given columns.
    #[must_use]
    pub fn new(columns: &[&str]) -> Self {
        Self {
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Parses TSV text. Lines end with `\n` or `\r\n`; a final newline is accepted.
    ///
    /// # Errors
    /// [`Error::Table`] for an empty header, a duplicated column, a row whose cell count
    /// differs from the header's, or a carriage return that does not end a line (a cell
    /// cannot hold one, and the table would not be written back the same).
    pub fn parse(text: &str) -> Result<Self> {
        let err = |line: usize, message: String| Error::Table {
            path: PathBuf::new(),
            line,
            message,
        };
        let lines: Vec<&str> = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        if let Some(i) = lines.iter().position(|l| l.contains('\r')) {
            return Err(err(
                i + 1,
                "a carriage return inside the line; end lines with \\n (or \\r\\n) and keep line breaks out of cells".into(),
            ));
        }
        let mut lines = lines.into_iter();
        let header = lines
            .next()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| err(1, "no header row; the first line names the columns".into()))?;
        let columns: Vec<String> = header.split('\t').map(str::to_owned).collect();
        for (i, c) in columns.iter().enumerate() {
            if columns[..i].contains(c) {
                return Err(err(1, format!("column {c:?} appears twice")));
            }
        }
        let mut rows = Vec::new();
        for (i, line) in lines.enumerate() {
            if line.is_empty() {
                continue;
            }
            let cells: Vec<String> = line.split('\t').map(str::to_owned).collect();
            if cells.len() != columns.len() {
                return Err(err(
                    i + 2,
                    format!(
                        "{} cells but the header has {} columns; separate cells with one tab and fill gaps with n/a",
                        cells.len(),
                        columns.len()
                    ),
                ));
            }
            rows.push(cells);
        }
        Ok(Self { columns, rows })
    }

    /// Reads and parses a table file.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Table`] (with the path).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text).map_err(|e| with_path(e, path))
    }

    /// The TSV text, with a trailing newline.
    #[must_use]
    pub fn to_tsv(&self) -> String {
        let mut out = self.columns.join("\t");
        out.push('\n');
        for row in &self.rows {
            out.push_str(&row.join("\t"));
            out.push('\n');
        }
        out
    }

    /// Column names, in order.
    #[must_use]
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Rows, each as long as the header.
    #[must_use]
    pub fn rows(&self) -> &[Vec<String>] {
        &self.rows
    }

    /// Position of a column.
    #[must_use]
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The values of a column, in row order.
    pub fn values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let idx = self.column(name);
        self.rows
            .iter()
            .filter_map(move |r| idx.and_then(|i| r.get(i)).map(String::as_str))
    }

    /// Inserts a row, or replaces the row whose `key` columns hold the same values. Columns the
    /// table lacks are appended (earlier rows get `n/a`); cells the row lacks are `n/a`.
    ///
    /// # Errors
    /// [`Error::Invalid`] if a cell holds a tab or newline, or a key column is missing.
    pub fn upsert(&mut self, cells: &[(String, String)], key: &[&str]) -> Result<()> {
        for (c, v) in cells {
            if [c, v].iter().any(|s| s.contains(['\t', '\n', '\r'])) || c.is_empty() {
                return Err(Error::Invalid {
                    what: c.clone(),
                    message: format!("{v:?} cannot be a TSV cell: remove tabs and line breaks"),
                });
            }
            if self.column(c).is_none() {
                self.columns.push(c.clone());
                for row in &mut self.rows {
                    row.push(NA.to_owned());
                }
            }
        }
        let mut row = vec![NA.to_owned(); self.columns.len()];
        for (c, v) in cells {
            if let Some(i) = self.column(c) {
                row[i] = v.clone();
            }
        }
        let mut key_idx = Vec::new();
        for k in key {
            key_idx.push(self.column(k).ok_or_else(|| Error::Invalid {
                what: (*k).to_owned(),
                message: "key column missing from the row".into(),
            })?);
        }
        match self
            .rows
            .iter_mut()
            .find(|r| key_idx.iter().all(|&i| r[i] == row[i]))
        {
            Some(existing) => *existing = row,
            None => self.rows.push(row),
        }
        Ok(())
    }
}

fn with_path(e: Error, path: &Path) -> Error {
    match e {
        Error::Table { line, message, .. } => Error::Table {
            path: path.to_owned(),
            line,
            message,
        },
        other => other,
    }
}

/// Reads `path` (or starts from `Table::new(initial_columns)` if it does not exist), applies
/// `change`, and publishes the result atomically, all under an exclusive lock
/// ([`strata_fs::update_locked`]).
///
/// # Errors
/// I/O errors, a malformed existing table, or what `change` returns. On error the table on
/// disk is unchanged.
pub fn update(
    path: &Path,
    initial_columns: &[&str],
    change: impl FnOnce(&mut Table) -> Result<()>,
) -> Result<()> {
    if path.file_name().is_none() {
        return Err(Error::Invalid {
            what: path.display().to_string(),
            message: "not a file path".into(),
        });
    }
    strata_fs::update_locked(path, |old: Option<&[u8]>| {
        let mut table = match old {
            Some(bytes) => {
                let text = std::str::from_utf8(bytes).map_err(|e| {
                    Error::io(
                        path,
                        std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                    )
                })?;
                Table::parse(text).map_err(|e| with_path(e, path))?
            }
            None => Table::new(initial_columns),
        };
        change(&mut table)?;
        Ok(table.to_tsv().into_bytes())
    })
}

/// `sample_type`: one of the values the schema allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SampleType(&'static str);

impl SampleType {
    /// A tissue sample, e.g. a histological section.
    pub const TISSUE: Self = Self("tissue");

    /// Looks the value up in the schema's enum.
    ///
    /// # Errors
    /// [`Error::Invalid`] listing the allowed values.
    pub fn new(s: &str) -> Result<Self> {
        generated::SAMPLE_TYPES
            .iter()
            .find(|t| **t == s)
            .map(|t| Self(t))
            .ok_or_else(|| Error::Invalid {
                what: "sample_type".into(),
                message: format!(
                    "{s:?} is not one of: {}",
                    generated::SAMPLE_TYPES.join(", ")
                ),
            })
    }

    /// The value text.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

/// A row of `samples.tsv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleRow {
    /// The sample label (written as `sample-<label>`).
    pub sample: Label,
    /// The subject label (written as `sub-<label>`).
    pub subject: Label,
    /// The kind of sample.
    pub sample_type: SampleType,
    /// Further columns, preserved.
    pub extra: Vec<(String, String)>,
}

impl SampleRow {
    fn cells(&self) -> Vec<(String, String)> {
        let mut c = vec![
            ("sample_id".to_owned(), format!("sample-{}", self.sample)),
            ("participant_id".to_owned(), format!("sub-{}", self.subject)),
            (
                "sample_type".to_owned(),
                self.sample_type.as_str().to_owned(),
            ),
        ];
        c.extend(self.extra.iter().cloned());
        c
    }
}

/// A row of `participants.tsv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantRow {
    /// The subject label (written as `sub-<label>`).
    pub subject: Label,
    /// Further columns (`species`, `age`, `sex`, ...), preserved.
    pub extra: Vec<(String, String)>,
}

/// A row of `sub-<label>_sessions.tsv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// The session label (written as `ses-<label>`).
    pub session: Label,
    /// Further columns (`acq_time`, ...), preserved.
    pub extra: Vec<(String, String)>,
}

fn columns_of(table: &[(&'static str, crate::schema::Level)]) -> Vec<&'static str> {
    table
        .iter()
        .filter(|(_, l)| *l == crate::schema::Level::Required)
        .map(|(c, _)| *c)
        .collect()
}

/// Rows for one of the dataset-level tables, for [`apply`] (what [`add_samples`] and
/// [`add_participants`] write into their files).
#[derive(Debug, Clone, Copy)]
pub enum Rows<'a> {
    /// Rows of `samples.tsv` (keyed by sample and participant).
    Samples(&'a [SampleRow]),
    /// Rows of `participants.tsv` (keyed by participant).
    Participants(&'a [ParticipantRow]),
}

impl Rows<'_> {
    /// The table's file name at the dataset root.
    #[must_use]
    pub fn file_name(&self) -> &'static str {
        match self {
            Self::Samples(_) => "samples.tsv",
            Self::Participants(_) => "participants.tsv",
        }
    }

    fn initial_columns(&self) -> Vec<&'static str> {
        match self {
            Self::Samples(_) => columns_of(generated::SAMPLES_COLUMNS),
            Self::Participants(_) => columns_of(generated::PARTICIPANTS_COLUMNS),
        }
    }

    fn upsert(&self, t: &mut Table) -> Result<()> {
        match self {
            Self::Samples(rows) => rows
                .iter()
                .try_for_each(|r| t.upsert(&r.cells(), &["sample_id", "participant_id"])),
            Self::Participants(rows) => rows.iter().try_for_each(|r| {
                let mut cells = vec![("participant_id".to_owned(), format!("sub-{}", r.subject))];
                cells.extend(r.extra.iter().cloned());
                t.upsert(&cells, &["participant_id"])
            }),
        }
    }
}

/// Adds or replaces `rows` in a table given as text (`None` when there is no table yet) and
/// returns the new text: the change [`add_samples`] and [`add_participants`] make, for tables
/// kept where files cannot be locked (object storage).
///
/// # Errors
/// A malformed existing table.
pub fn apply(text: Option<&str>, rows: Rows<'_>) -> Result<String> {
    let mut table = match text {
        Some(t) => Table::parse(t)?,
        None => Table::new(&rows.initial_columns()),
    };
    rows.upsert(&mut table)?;
    Ok(table.to_tsv())
}

fn add_rows(root: &Path, rows: Rows<'_>) -> Result<()> {
    update(&root.join(rows.file_name()), &rows.initial_columns(), |t| {
        rows.upsert(t)
    })
}

/// Adds or replaces rows of `<root>/samples.tsv` (keyed by sample and participant).
///
/// # Errors
/// See [`update`].
pub fn add_samples(root: &Path, rows: &[SampleRow]) -> Result<()> {
    add_rows(root, Rows::Samples(rows))
}

/// Adds or replaces rows of `<root>/participants.tsv` (keyed by participant).
///
/// # Errors
/// See [`update`].
pub fn add_participants(root: &Path, rows: &[ParticipantRow]) -> Result<()> {
    add_rows(root, Rows::Participants(rows))
}

/// Adds or replaces rows of `<root>/sub-<subject>/sub-<subject>_sessions.tsv`.
///
/// # Errors
/// See [`update`].
pub fn add_sessions(root: &Path, subject: &Label, rows: &[SessionRow]) -> Result<()> {
    let path = root
        .join(format!("sub-{subject}"))
        .join(format!("sub-{subject}_sessions.tsv"));
    update(&path, &columns_of(generated::SESSIONS_COLUMNS), |t| {
        rows.iter().try_for_each(|r| {
            let mut cells = vec![("session_id".to_owned(), format!("ses-{}", r.session))];
            cells.extend(r.extra.iter().cloned());
            t.upsert(&cells, &["session_id"])
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(s: &str) -> Label {
        Label::new("x", s).expect("label")
    }

    #[test]
    fn parse_errors_name_the_line() {
        let e = Table::parse("a\tb\n1\t2\n3\n")
            .expect_err("ragged")
            .to_string();
        assert!(e.contains("line 3"), "{e}");
        assert!(Table::parse("").is_err());
        assert!(Table::parse("a\ta\n").is_err());
    }

    #[test]
    fn line_endings_are_lf_or_crlf_and_cells_hold_no_carriage_return() {
        let crlf = Table::parse("a\tb\r\n1\t2\r\n").expect("CRLF");
        assert_eq!(crlf.rows(), [vec!["1".to_owned(), "2".to_owned()]]);
        assert_eq!(crlf.to_tsv(), "a\tb\n1\t2\n");
        // Found by fuzzing: a cell ending in `\r\r` lost one on every write and parse.
        for text in ["a\n\r\r\n", "a\tb\n1\r\t2\n", "a\rb\n"] {
            let e = Table::parse(text).expect_err(text).to_string();
            assert!(e.contains("carriage return"), "{text:?}: {e}");
        }
        let e = Table::parse("a\n1\n2\r3\n").expect_err("stray").to_string();
        assert!(e.contains("line 3"), "{e}");
    }

    #[test]
    fn upsert_preserves_extra_columns() {
        let mut t = Table::parse(
            "sample_id\tparticipant_id\tsample_type\tstain\nsample-A\tsub-01\ttissue\tHE\n",
        )
        .expect("parse");
        let row = SampleRow {
            sample: label("B"),
            subject: label("01"),
            sample_type: SampleType::TISSUE,
            extra: vec![("thickness".into(), "20".into())],
        };
        t.upsert(&row.cells(), &["sample_id", "participant_id"])
            .expect("upsert");
        assert_eq!(
            t.to_tsv(),
            "sample_id\tparticipant_id\tsample_type\tstain\tthickness\n\
             sample-A\tsub-01\ttissue\tHE\tn/a\n\
             sample-B\tsub-01\ttissue\tn/a\t20\n"
        );
        // Same key again replaces, not duplicates.
        t.upsert(&row.cells(), &["sample_id", "participant_id"])
            .expect("upsert");
        assert_eq!(t.rows().len(), 2);
        assert!(t.upsert(&[("a\tb".into(), "x".into())], &[]).is_err());
    }

    #[test]
    fn sample_type_from_schema() {
        assert!(SampleType::new("tissue").is_ok());
        let e = SampleType::new("banana").expect_err("bad").to_string();
        assert!(e.contains("cell line"), "{e}");
    }

    #[test]
    fn concurrent_writers_lose_no_row() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_owned();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let root = root.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        let row = SampleRow {
                            sample: label(&format!("{t}x{i}")),
                            subject: label("01"),
                            sample_type: SampleType::TISSUE,
                            extra: vec![],
                        };
                        add_samples(&root, &[row]).expect("add");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let t = Table::read(&root.join("samples.tsv")).expect("read");
        assert_eq!(t.rows().len(), 200);
        let leftovers: Vec<_> = std::fs::read_dir(&root)
            .expect("dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-") || strata_fs::is_temp_name(n))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
