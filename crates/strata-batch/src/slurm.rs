//! Slurm, through its commands (`sbatch`, `squeue`, `scancel`): the array job script of a
//! batch ([`JobSpec::script`]), its submission and the queue's view of its tasks.

use crate::error::{Error, Result};
use crate::task::BatchPaths;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// What the array job asks of Slurm.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobSpec {
    /// The task indices (manifest sections) to run.
    pub indices: Vec<usize>,
    /// At most this many tasks at once (`%K`); `None`: as many as Slurm allows.
    pub concurrency: Option<u32>,
    /// Memory per task in MiB.
    pub mem_mib: u64,
    /// Time limit per task in minutes.
    pub time_min: u64,
    /// CPUs per task.
    pub cpus: u32,
    /// Partition; `None`: the cluster's default.
    pub partition: Option<String>,
    /// Account to charge; `None`: the user's default.
    pub account: Option<String>,
    /// The `strata` program the tasks run (a path the compute nodes see).
    pub strata: PathBuf,
}

/// The job name of a batch: `strata-<manifest stem>-<8 hex digits of its path>`, so that
/// the queue can be asked for this batch's tasks even without the state cache.
#[must_use]
pub fn job_name(paths: &BatchPaths) -> String {
    let stem = paths
        .manifest
        .file_stem()
        .map_or_else(|| "batch".into(), |s| s.to_string_lossy().into_owned());
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let digest = Sha256::digest(paths.manifest.as_os_str().as_encoded_bytes());
    format!(
        "strata-{stem}-{}",
        digest[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// `0-5` style ranges of sorted indices: `0-3,7,9-10`.
#[must_use]
pub fn array_ranges(indices: &[usize]) -> String {
    let mut sorted = indices.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// Quotes `s` for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl JobSpec {
    /// The `sbatch` script: one array task per index, each running
    /// `strata batch run --manifest M --index $SLURM_ARRAY_TASK_ID`, output to
    /// `M.logs/slurm-<job>_<task>.out`.
    #[must_use]
    pub fn script(&self, paths: &BatchPaths) -> String {
        let mut array = array_ranges(&self.indices);
        if let Some(k) = self.concurrency {
            array.push_str(&format!("%{k}"));
        }
        let mut s = String::from("#!/bin/bash\n");
        s.push_str(&format!("#SBATCH --job-name={}\n", job_name(paths)));
        s.push_str(&format!("#SBATCH --array={array}\n"));
        s.push_str(&format!("#SBATCH --mem={}M\n", self.mem_mib));
        s.push_str(&format!("#SBATCH --time={}\n", self.time_min));
        s.push_str(&format!("#SBATCH --cpus-per-task={}\n", self.cpus));
        s.push_str(&format!(
            "#SBATCH --output={}/slurm-%A_%a.out\n",
            paths.logs.display()
        ));
        if let Some(p) = &self.partition {
            s.push_str(&format!("#SBATCH --partition={p}\n"));
        }
        if let Some(a) = &self.account {
            s.push_str(&format!("#SBATCH --account={a}\n"));
        }
        s.push_str("# Each task converts one manifest section; a published section is skipped.\n");
        s.push_str("set -euo pipefail\n");
        s.push_str(&format!(
            "exec {} batch run --manifest {} --index \"$SLURM_ARRAY_TASK_ID\"\n",
            shell_quote(&self.strata.to_string_lossy()),
            shell_quote(&paths.manifest.to_string_lossy())
        ));
        s
    }
}

/// A task as the queue shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum QueueState {
    /// Waiting for resources.
    Pending,
    /// Running (or completing).
    Running,
}

/// Runs a Slurm command, with a clear error when it is missing or fails.
fn slurm(cmd: &mut Command, stdin: Option<&str>) -> Result<String> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    let line = format!(
        "{name} {}",
        cmd.get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::SlurmMissing {
                command: name.clone(),
            }
        } else {
            Error::Slurm {
                command: line.clone(),
                stderr: e.to_string(),
            }
        }
    })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).map_err(|e| Error::Slurm {
            command: line.clone(),
            stderr: e.to_string(),
        })?;
    }
    let out = child.wait_with_output().map_err(|e| Error::Slurm {
        command: line.clone(),
        stderr: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(Error::Slurm {
            command: line,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Submits `script` with `sbatch --parsable` and returns the job id.
///
/// # Errors
/// [`Error::SlurmMissing`], [`Error::Slurm`].
pub fn submit(script: &str) -> Result<String> {
    let out = slurm(Command::new("sbatch").arg("--parsable"), Some(script))?;
    // `--parsable` prints `<job id>[;<cluster>]`.
    let id = out.trim().split(';').next().unwrap_or_default().to_owned();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Slurm {
            command: "sbatch --parsable".into(),
            stderr: format!("unexpected answer {:?}", out.trim()),
        });
    }
    Ok(id)
}

/// The queued and running tasks of the batch's jobs (by job name), index to state.
///
/// # Errors
/// [`Error::SlurmMissing`], [`Error::Slurm`].
pub fn queue(paths: &BatchPaths) -> Result<BTreeMap<usize, QueueState>> {
    let out = slurm(
        Command::new("squeue").args([
            "--noheader",
            "--array",
            "--name",
            &job_name(paths),
            "--format=%K|%t",
        ]),
        None,
    )?;
    Ok(parse_queue(&out))
}

/// Parses `squeue --array --format=%K|%t`: one `<task>|<state>` line per task.
fn parse_queue(out: &str) -> BTreeMap<usize, QueueState> {
    let mut tasks = BTreeMap::new();
    for line in out.lines() {
        let Some((task, state)) = line.trim().split_once('|') else {
            continue;
        };
        let Ok(task) = task.parse::<usize>() else {
            continue;
        };
        let state = match state {
            "PD" | "CF" | "RQ" | "RS" | "S" | "RH" => QueueState::Pending,
            "R" | "CG" | "SO" | "ST" | "SI" => QueueState::Running,
            _ => continue,
        };
        // A task of two jobs (a retry while the first still completes): running wins.
        let e = tasks.entry(task).or_insert(state);
        if state == QueueState::Running {
            *e = state;
        }
    }
    tasks
}

/// Cancels every queued and running task of the batch (`scancel --name`).
///
/// # Errors
/// [`Error::SlurmMissing`], [`Error::Slurm`].
pub fn cancel(paths: &BatchPaths) -> Result<()> {
    slurm(
        Command::new("scancel").args(["--name", &job_name(paths)]),
        None,
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_collapse_runs() {
        assert_eq!(array_ranges(&[0, 1, 2, 3, 7, 9, 10]), "0-3,7,9-10");
        assert_eq!(array_ranges(&[5]), "5");
        assert_eq!(array_ranges(&[3, 1, 2, 2]), "1-3");
        assert_eq!(array_ranges(&[]), "");
    }

    #[test]
    fn queue_lines_parse() {
        let q = parse_queue("3|PD\n4|R\nN/A|PD\n5|CD\ngarbage\n4|PD\n");
        assert_eq!(q.get(&3), Some(&QueueState::Pending));
        assert_eq!(q.get(&4), Some(&QueueState::Running));
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn script_runs_each_index_with_quoted_paths() {
        let paths = BatchPaths::new(std::path::Path::new("/data/it's/brain.json")).expect("paths");
        let spec = JobSpec {
            indices: vec![0, 1, 2, 5],
            concurrency: Some(2),
            mem_mib: 512,
            time_min: 10,
            cpus: 2,
            partition: None,
            account: None,
            strata: PathBuf::from("/opt/strata"),
        };
        let s = spec.script(&paths);
        assert!(s.contains("#SBATCH --array=0-2,5%2\n"), "{s}");
        assert!(s.contains("#SBATCH --mem=512M\n"));
        assert!(s.contains("--output=/data/it's/brain.logs/slurm-%A_%a.out"));
        assert!(s.contains(r"--manifest '/data/it'\''s/brain.json'"), "{s}");
    }
}
