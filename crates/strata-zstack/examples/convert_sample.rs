//! Writes a small synthetic z-stack as tiled TIFFs, opens it as a [`TiffStack`] and converts
//! it into a BIDS dataset with a sharded OME-Zarr image; prints the conversion summary.
//!
//! ```text
//! cargo run -p strata-zstack --example convert_sample [OUT_DIR]
//! ```
//!
//! Without `OUT_DIR` everything goes to a temporary folder that is removed at the end.

use strata_bids::name::{Label, Suffix};
use strata_zstack::{
    ConvertOptions, NoHook, SampleOptions, SampleType, Section, TiffStack, TileCompression,
    ZStackSource, convert, write_sample,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let temp = tempfile::tempdir()?;
    let out = std::env::args_os()
        .nth(1)
        .map_or_else(|| temp.path().to_owned(), std::path::PathBuf::from);

    // 1. A 1024 x 1024 gray z-stack of 9 focus levels, level 4 in focus, 256-pixel LZW tiles.
    let zstack = out.join("zstack");
    let sample = write_sample(
        &zstack,
        &SampleOptions {
            width: 1024,
            height: 1024,
            planes: 9,
            in_focus_plane: 4,
            channels: 1,
            sample_type: SampleType::U8,
            tile: 256,
            compression: TileCompression::Lzw,
            seed: 42,
            pixel_size_um: 0.5,
            ..SampleOptions::default()
        },
    )?;
    println!(
        "wrote {} TIFF files, {} bytes, in {}",
        sample.files.len(),
        sample.bytes,
        zstack.display()
    );

    // 2. Open the folder: every plane is checked before anything is converted.
    let mut stack = TiffStack::open(&zstack)?;
    let info = stack.info();
    println!(
        "z-stack: {} planes of {} x {}, pixel size {:?} um",
        info.planes, info.width, info.height, info.pixel_size
    );

    // 3. Convert; the pixel size comes from the TIFF resolution tags (z spacing 1 um).
    let section = Section {
        bids_root: out.join("bids"),
        subject: Label::new("sub", "demo")?,
        session: None,
        sample: Label::new("sample", "01")?,
        stain: None,
        suffix: Suffix::BF,
    };
    let summary = convert(
        &mut stack,
        &section,
        &ConvertOptions::default(),
        &mut NoHook,
    )?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}
