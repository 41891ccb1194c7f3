//! Counting a real tree: files, directories, symlinks, bytes and git-annex objects.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What a walk of a real tree found. Every count includes the root directory and everything
/// below it, `.git` directories included; `git` repeats the part inside `.git` directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Measurement {
    /// Regular files.
    pub files: u64,
    /// Directories, the root included.
    pub dirs: u64,
    /// Bytes of regular files (symlinks not followed).
    pub bytes: u64,
    /// Regular files under any `.git/annex/objects/` (annexed content present locally), by name
    /// (a thin object hard-linked into the work tree still counts here).
    pub annexed_objects: u64,
    /// Symbolic links (git-annex work-tree pointers).
    pub symlinks: u64,
    /// Other inodes (sockets, fifos, devices).
    pub other: u64,
    /// Further names of regular files already counted (hard links share one inode; thin
    /// unlocked annexed files are hard links to their objects). Not inodes.
    pub extra_links: u64,
    /// The part of the counts inside `.git` directories.
    pub git: GitPart,
}

/// Files and directories inside `.git` directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GitPart {
    /// Regular files (and symlinks) inside `.git`.
    pub files: u64,
    /// Directories inside `.git`, each `.git` itself included.
    pub dirs: u64,
    /// Loose git objects (`.git/objects/xx/...`).
    pub loose_objects: u64,
    /// Git repositories (`.git` entries) found.
    pub repositories: u64,
}

impl Measurement {
    /// Inodes: files, directories, symlinks and other entries.
    #[must_use]
    pub fn inodes(&self) -> u64 {
        self.files + self.dirs + self.symlinks + self.other
    }
}

#[derive(Clone, Copy)]
struct Ctx {
    in_git: bool,
    in_objects: bool,
    in_annex_objects: bool,
    depth_in_git: u32,
}

/// Inodes already seen among multiply-linked files.
#[derive(Default)]
struct Seen(std::collections::HashSet<(u64, u64)>);

impl Seen {
    /// Whether this regular file's inode was counted before (always `false` off Unix).
    #[cfg(unix)]
    fn repeat(&mut self, meta: &std::fs::Metadata) -> bool {
        use std::os::unix::fs::MetadataExt;
        meta.nlink() > 1 && !self.0.insert((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    fn repeat(&mut self, _meta: &std::fs::Metadata) -> bool {
        false
    }
}

/// Walks `path` (not following symlinks) and counts what is there; a hard-linked file counts
/// once, under whichever name is met first.
///
/// # Errors
/// [`Error::Io`] with the path that could not be read.
pub fn measure(path: &Path) -> Result<Measurement> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| Error::io(path, e))?;
    let mut m = Measurement::default();
    let ctx = Ctx {
        in_git: false,
        in_objects: false,
        in_annex_objects: false,
        depth_in_git: 0,
    };
    let mut seen = Seen::default();
    if meta.is_dir() {
        m.dirs += 1;
        walk(path, ctx, &mut m, &mut seen)?;
    } else {
        count_leaf(&meta, ctx, &mut m, &mut seen);
    }
    Ok(m)
}

fn count_leaf(meta: &std::fs::Metadata, ctx: Ctx, m: &mut Measurement, seen: &mut Seen) {
    let ft = meta.file_type();
    if ft.is_file() && ctx.in_annex_objects {
        m.annexed_objects += 1;
    }
    if ft.is_file() && seen.repeat(meta) {
        m.extra_links += 1;
        return;
    }
    if ft.is_file() {
        m.files += 1;
        m.bytes += meta.len();
    } else if ft.is_symlink() {
        m.symlinks += 1;
    } else {
        m.other += 1;
    }
    if ctx.in_git {
        m.git.files += 1;
        if ctx.in_objects && ft.is_file() {
            m.git.loose_objects += 1;
        }
    }
}

fn walk(dir: &Path, ctx: Ctx, m: &mut Measurement, seen: &mut Seen) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).map_err(|e| Error::io(&path, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == ".git" && !ctx.in_git {
            m.git.repositories += 1;
        }
        let mut child = ctx;
        if name == ".git" && !ctx.in_git {
            child.in_git = true;
            child.depth_in_git = 0;
        } else if ctx.in_git {
            child.depth_in_git += 1;
        }
        if ctx.in_git {
            // .git/objects/xx/ holds loose objects; .git/annex/objects/ holds annexed content.
            if ctx.depth_in_git == 0 && name == "objects" {
                child.in_objects = false;
            }
            if ctx.depth_in_git == 1 && dir.ends_with("objects") && name.len() == 2 {
                let parent_is_git = dir.parent().is_some_and(|p| p.ends_with(".git"));
                child.in_objects = parent_is_git && name.bytes().all(|b| b.is_ascii_hexdigit());
            }
            if ctx.depth_in_git == 1 && dir.ends_with("annex") && name == "objects" {
                child.in_annex_objects = true;
            }
        }
        if meta.is_dir() {
            m.dirs += 1;
            if child.in_git {
                m.git.dirs += 1;
            }
            walk(&path, child, m, seen)?;
        } else {
            count_leaf(&meta, child, m, seen);
        }
    }
    Ok(())
}
