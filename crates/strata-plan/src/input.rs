//! What is planned: the acquisition, the on-disk layout and the DataLad grouping.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How each section's image is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Layout {
    /// The scanner's folder per section: one TIFF per focus level, no BIDS metadata.
    RawTiff,
    /// One HDF5 file per section (pyramid inside) plus the BIDS sidecar.
    Hdf5,
    /// OME-Zarr 0.4 (Zarr v2): one file per chunk.
    OmeZarrV2,
    /// OME-Zarr 0.5 (Zarr v3) without sharding: one file per chunk.
    ZarrV3,
    /// OME-Zarr 0.5 (Zarr v3) with `sharding_indexed`: one file per shard.
    ZarrV3Sharded,
    /// One zipped OME-Zarr (`.ozx`, RFC-9) per section plus the BIDS sidecar.
    Ozx,
}

impl Layout {
    /// Every layout, in table order.
    pub const ALL: [Layout; 6] = [
        Layout::RawTiff,
        Layout::Hdf5,
        Layout::OmeZarrV2,
        Layout::ZarrV3,
        Layout::ZarrV3Sharded,
        Layout::Ozx,
    ];

    /// Short name used in tables and on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Layout::RawTiff => "raw-tiff",
            Layout::Hdf5 => "hdf5",
            Layout::OmeZarrV2 => "ome-zarr-v2",
            Layout::ZarrV3 => "zarr-v3",
            Layout::ZarrV3Sharded => "zarr-v3-sharded",
            Layout::Ozx => "ozx",
        }
    }

    /// Whether the layout is valid BIDS microscopy today (`.ome.zarr` directories; HDF5, `.ozx`
    /// and the raw folder are not BIDS microscopy extensions).
    #[must_use]
    pub fn bids_valid(self) -> bool {
        matches!(
            self,
            Layout::OmeZarrV2 | Layout::ZarrV3 | Layout::ZarrV3Sharded
        )
    }
}

/// Where DataLad subdataset boundaries are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Grouping {
    /// One dataset holds everything.
    None,
    /// One subdataset per subject, rooted at `sub-<s>/`.
    PerSubject,
    /// One subdataset per `n` consecutive sections of a subject, rooted at a
    /// `sub-<s>/ses-<k>/` directory (BIDS sessions are the only directory level BIDS allows
    /// between the subject and `micr/`); `n = 1` is one subdataset per section.
    PerSections(u64),
}

impl Grouping {
    /// Short name used in tables.
    #[must_use]
    pub fn name(self) -> String {
        match self {
            Grouping::None => "none".to_owned(),
            Grouping::PerSubject => "per-subject".to_owned(),
            Grouping::PerSections(1) => "per-section".to_owned(),
            Grouping::PerSections(n) => format!("per-{n}-sections"),
        }
    }
}

/// Chunk key separator: `/` makes one directory per key component, `.` keeps keys flat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeySeparator {
    /// `c/0/z/y/x` (Zarr v3 default) or `0/z/y/x` (v2 nested): directories per component.
    Slash,
    /// `c.0.z.y.x` or `0.z.y.x`: one file name, no directories (what Strata writes).
    Dot,
}

/// How git-annex stores content (fixed when each dataset's annex is initialised).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct AnnexOptions {
    /// `annex.tune.objecthash1=true` at `git annex init`: one level of hash directories under
    /// `.git/annex/objects/` instead of two, saving about one directory per annexed file.
    pub objecthash1: bool,
    /// `annex.addunlocked=true` with `annex.thin=true`: work-tree files are unlocked and
    /// hard-linked to the annexed object, one inode for both instead of a symlink plus the
    /// object. The work-tree file must never be modified in place.
    pub thin_unlocked: bool,
}

impl AnnexOptions {
    /// git-annex defaults: locked files (symlinks), two hash levels.
    pub const DEFAULT: AnnexOptions = AnnexOptions {
        objecthash1: false,
        thin_unlocked: false,
    };
    /// Both inode savings on.
    pub const TUNED: AnnexOptions = AnnexOptions {
        objecthash1: true,
        thin_unlocked: true,
    };

    /// Short name used in tables.
    #[must_use]
    pub fn name(self) -> &'static str {
        match (self.objecthash1, self.thin_unlocked) {
            (false, false) => "default",
            (true, false) => "hash1",
            (false, true) => "thin",
            (true, true) => "hash1+thin",
        }
    }
}

/// The acquisition and storage parameters the model needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanInput {
    /// Histological sections (one z-stack each).
    pub sections: u64,
    /// Subjects (brains) the sections are spread over evenly.
    pub subjects: u64,
    /// Focus levels per section.
    pub planes: u64,
    /// Plane height in pixels.
    pub height: u64,
    /// Plane width in pixels.
    pub width: u64,
    /// Bytes per sample (1 for uint8).
    pub dtype_bytes: u64,
    /// Channels (3 for RGB); all channels go into every chunk.
    pub channels: u64,
    /// Inner chunk `(y, x)`; a chunk holds one plane and all channels.
    pub chunk: (u64, u64),
    /// Shard shape `(z, y, x)` in each level's pixels (clipped to the level); `None` is one
    /// shard per level holding all planes (Strata's default).
    pub shard: Option<(u64, u64, u64)>,
    /// Chunk key separator.
    pub separator: KeySeparator,
    /// Pyramid levels; `None` halves y and x (rounding up) until a level fits one chunk.
    pub levels: Option<u32>,
    /// Stored bytes per uncompressed byte (1.0 = no compression).
    pub compression_ratio: f64,
    /// How git-annex stores content.
    #[serde(default)]
    pub annex: AnnexOptions,
}

impl PlanInput {
    /// The whole-brain case: 7,000 sections x 30 planes of 150,000 x 120,000 uint8 RGB,
    /// one subject, 512 x 512 chunks, one shard per level, `.` keys, no compression assumed.
    #[must_use]
    pub fn whole_brain() -> Self {
        Self {
            sections: 7000,
            subjects: 1,
            planes: 30,
            height: 150_000,
            width: 120_000,
            dtype_bytes: 1,
            channels: 3,
            chunk: (512, 512),
            shard: None,
            separator: KeySeparator::Dot,
            levels: None,
            compression_ratio: 1.0,
            annex: AnnexOptions::DEFAULT,
        }
    }

    /// Checks every field is in range.
    ///
    /// # Errors
    /// [`Error::Input`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("sections", self.sections),
            ("subjects", self.subjects),
            ("planes", self.planes),
            ("height", self.height),
            ("width", self.width),
            ("dtype_bytes", self.dtype_bytes),
            ("channels", self.channels),
            ("chunk y", self.chunk.0),
            ("chunk x", self.chunk.1),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(Error::Input(format!("{name} must be at least 1")));
            }
        }
        if self.height > 1 << 32 || self.width > 1 << 32 || self.planes > 1 << 20 {
            return Err(Error::Input("plane size out of range".to_owned()));
        }
        if self.channels > 1 << 16 || self.dtype_bytes > 16 {
            return Err(Error::Input("channels or dtype out of range".to_owned()));
        }
        if self.sections > 1 << 40 || self.subjects > self.sections {
            return Err(Error::Input(
                "subjects must be between 1 and the number of sections".to_owned(),
            ));
        }
        if let Some((z, y, x)) = self.shard
            && (z == 0 || y == 0 || x == 0)
        {
            return Err(Error::Input(
                "shard dimensions must be at least 1".to_owned(),
            ));
        }
        if let Some((_, y, x)) = self.shard
            && (y % self.chunk.0 != 0 || x % self.chunk.1 != 0)
        {
            return Err(Error::Input(
                "shard y and x must be multiples of the chunk".to_owned(),
            ));
        }
        if self.levels == Some(0) || self.levels.is_some_and(|l| l > 64) {
            return Err(Error::Input("levels must be between 1 and 64".to_owned()));
        }
        if !(self.compression_ratio.is_finite()
            && self.compression_ratio > 0.0
            && self.compression_ratio <= 1000.0)
        {
            return Err(Error::Input(
                "compression_ratio must be a finite number in (0, 1000]".to_owned(),
            ));
        }
        Ok(())
    }

    /// Level shapes `(height, width)` from level 0 down, as the converter writes them
    /// ([`strata_ngff::pyramid_shapes`]).
    #[must_use]
    pub fn level_shapes(&self) -> Vec<(u64, u64)> {
        let chunk = self.chunk.0.max(self.chunk.1);
        strata_ngff::pyramid_shapes(
            self.height,
            self.width,
            chunk,
            self.levels.map(|n| n as usize),
        )
    }
}
