//! Quality control inside the conversion's single read.
//!
//! [`QcHook`] is a [`BandHook`]: each level-0 band is copied to a worker thread that feeds the
//! strata-qc accumulators, so QC overlaps reading and encoding instead of adding to them.
//! [`run_qc`] is the same pass without writing anything (`strata qc`).

use crate::error::{Error, Result};
use crate::image::BandHook;
use crate::source::{Region, SampleType, StackInfo, ZStackSource};
use std::sync::mpsc;
use std::thread::JoinHandle;
use strata_qc::{PixelFormat, PlaneGeometry, PlaneSink, QcConfig, StackQc, StackSummary};

/// The QC pixel format of a stack.
#[must_use]
pub fn pixel_format(info: &StackInfo) -> PixelFormat {
    match (info.channels, info.sample_type) {
        (3, SampleType::U8) => PixelFormat::Rgb8,
        (3, SampleType::U16) => PixelFormat::Rgb16,
        (_, SampleType::U8) => PixelFormat::Gray8,
        (_, SampleType::U16) => PixelFormat::Gray16,
    }
}

/// Messages to the QC worker: column segments `(plane, y0, x0, cols, pixels)` (whole rows
/// are the segment from column 0 across the plane) and plane ends.
enum Msg {
    Segment(u32, u32, u32, u32, Vec<u8>),
    PlaneDone(u32),
}

/// Computes QC metrics from the bands a conversion reads, on a worker thread.
#[derive(Debug)]
pub struct QcHook {
    tx: Option<mpsc::SyncSender<Msg>>,
    /// The band being assembled from column segments, when segments are not passed on.
    pending: Vec<u8>,
    /// The QC tile size: column segments of bands no taller than a tile go to QC as they are
    /// (it keeps the counters of every row of tiles a band touches, at most three then);
    /// taller ones are first assembled into whole rows.
    tile_size: usize,
    /// Band buffers the worker is done with, for reuse: fresh whole-width buffers allocated
    /// on one thread and freed on the worker's made the allocator hold on to far more memory
    /// than the two bands in use.
    free: mpsc::Receiver<Vec<u8>>,
    worker: Option<JoinHandle<strata_qc::Result<StackSummary>>>,
}

impl QcHook {
    /// A hook for a stack of geometry `info`.
    ///
    /// # Errors
    /// [`Error::Config`] if the QC configuration is unusable or the stack is not gray/RGB.
    pub fn new(info: &StackInfo, config: QcConfig) -> Result<Self> {
        if !matches!(info.channels, 1 | 3) {
            return Err(Error::Config(format!(
                "quality control needs gray or RGB planes, not {} samples per pixel",
                info.channels
            )));
        }
        let mut qc = StackQc::new(config).map_err(|e| Error::Config(e.to_string()))?;
        let geometry = PlaneGeometry::new(
            info.width as usize,
            info.height as usize,
            pixel_format(info),
        );
        let format = geometry.format;
        let tile_size = qc.config().tile_size;
        // A band is handed over only when the worker is ready for it: at most the band being
        // assembled and the one being measured are held (two whole-width bands), and a
        // conversion faster than quality control waits for it rather than queueing bands.
        let (tx, rx) = mpsc::sync_channel::<Msg>(0);
        let (free_tx, free) = mpsc::channel();
        let worker = std::thread::spawn(move || {
            for msg in rx {
                match msg {
                    Msg::Segment(plane, y0, x0, cols, data) => {
                        if y0 == 0 && x0 == 0 {
                            qc.begin_plane(plane as usize, geometry)?;
                        }
                        let (p, y0, x0, cols) =
                            (plane as usize, y0 as usize, x0 as usize, cols as usize);
                        qc.segment_bytes(p, y0, x0, cols, format, &data)?;
                        let _ = free_tx.send(data);
                    }
                    Msg::PlaneDone(plane) => qc.finish_plane(plane as usize)?,
                }
            }
            qc.finish()
        });
        Ok(Self {
            tx: Some(tx),
            pending: Vec::new(),
            tile_size,
            free,
            worker: Some(worker),
        })
    }

    /// Waits for the worker and returns the stack's QC summary.
    ///
    /// # Errors
    /// [`Error::Config`] with the QC error (e.g. a plane that was not read completely).
    pub fn finish(mut self) -> Result<StackSummary> {
        drop(self.tx.take());
        let worker = self
            .worker
            .take()
            .ok_or_else(|| Error::Config("quality control already finished".into()))?;
        match worker.join() {
            Ok(r) => r.map_err(|e| Error::Config(format!("quality control: {e}"))),
            Err(_) => Err(Error::Config("quality control stopped unexpectedly".into())),
        }
    }
}

impl BandHook for QcHook {
    fn band(&mut self, info: &StackInfo, region: Region, data: &[u8]) {
        let Some(tx) = &self.tx else { return };
        if self.pending.capacity() == 0 {
            self.pending = self.free.try_recv().unwrap_or_default();
        }
        let (x0, cols) = if region.is_whole_rows(info) || region.rows as usize <= self.tile_size {
            self.pending.clear();
            self.pending.extend_from_slice(data);
            (region.x0, region.cols)
        } else {
            let (rb, px) = (info.row_bytes(), info.pixel_bytes());
            let (x, w) = (region.x0 as usize * px, region.cols as usize * px);
            self.pending.resize(region.rows as usize * rb, 0);
            for (row, src) in self.pending.chunks_exact_mut(rb).zip(data.chunks_exact(w)) {
                if let Some(dst) = row.get_mut(x..x + w) {
                    dst.copy_from_slice(src);
                }
            }
            if !region.ends_row(info) {
                return;
            }
            (0, info.width)
        };
        let band = std::mem::take(&mut self.pending);
        // A send fails only if the worker stopped on an error, which `finish` reports.
        let _ = tx.send(Msg::Segment(region.plane, region.y0, x0, cols, band));
    }

    fn plane_done(&mut self, _info: &StackInfo, plane: u32) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::PlaneDone(plane));
        }
    }
}

/// Several hooks fed the same bands, in order.
pub struct Hooks<'a>(pub Vec<&'a mut dyn BandHook>);

impl BandHook for Hooks<'_> {
    fn band(&mut self, info: &StackInfo, region: Region, data: &[u8]) {
        for h in &mut self.0 {
            h.band(info, region, data);
        }
    }

    fn plane_done(&mut self, info: &StackInfo, plane: u32) {
        for h in &mut self.0 {
            h.plane_done(info, plane);
        }
    }
}

/// Reads the whole stack once, band by band, and returns its QC summary (no output written).
///
/// # Errors
/// Source errors (naming the plane's file) and QC errors.
pub fn run_qc(
    source: &mut dyn ZStackSource,
    config: QcConfig,
    band_rows: u32,
    progress: &mut dyn BandHook,
) -> Result<StackSummary> {
    let info = source.info().clone();
    let mut hook = QcHook::new(&info, config)?;
    let rows = band_rows.max(1);
    let mut buf = Vec::new();
    for z in 0..info.planes {
        for y0 in (0..info.height).step_by(rows as usize) {
            let n = (info.height - y0).min(rows);
            buf.resize(n as usize * info.row_bytes(), 0);
            source.read_band(z, y0, n, &mut buf)?;
            let region = Region::rows(&info, z, y0, n);
            hook.band(&info, region, &buf);
            progress.band(&info, region, &buf);
        }
        hook.plane_done(&info, z);
    }
    hook.finish()
}
