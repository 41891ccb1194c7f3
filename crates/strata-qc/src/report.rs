//! The HTML report (placeholder replaced below).

/// A gray thumbnail of one plane.
#[derive(Debug, Clone, Copy)]
pub struct Thumbnail<'a> {
    /// Plane index.
    pub plane: usize,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height` gray pixels, row-major.
    pub pixels: &'a [u8],
}

/// Renders the report.
///
/// # Errors
/// Never yet.
pub fn render_html(
    _report: &crate::QcReport,
    _thumbnails: &[Thumbnail<'_>],
) -> crate::Result<String> {
    Ok(String::new())
}
