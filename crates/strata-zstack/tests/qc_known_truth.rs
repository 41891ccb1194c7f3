//! Quality control finds the known in-focus plane of synthetic z-stacks, with blur steps from
//! strong to subtle, gray and RGB, 8- and 16-bit, through the converter's band-wise QC pass.

use strata_zstack::{NoHook, SampleOptions, SampleType, SyntheticStack, run_qc};

#[test]
fn best_plane_is_the_in_focus_plane() {
    let mut checked = 0;
    for (channels, sample_type) in [
        (1, SampleType::U8),
        (3, SampleType::U8),
        (1, SampleType::U16),
        (3, SampleType::U16),
    ] {
        for blur_per_plane in [3.0, 1.0, 0.5] {
            for (planes, focus) in [(7, 3), (6, 1), (5, 4)] {
                let opts = SampleOptions {
                    width: 384,
                    height: 320,
                    planes,
                    in_focus_plane: focus,
                    channels,
                    sample_type,
                    blur_per_plane,
                    seed: u64::from(planes * 31 + focus),
                    ..SampleOptions::default()
                };
                let mut stack = SyntheticStack::new(opts).expect("stack");
                let summary = run_qc(&mut stack, strata_qc::QcConfig::default(), 100, &mut NoHook)
                    .expect("qc");
                assert_eq!(
                    summary.best_plane, focus as usize,
                    "{channels} channel(s) {sample_type:?}, blur {blur_per_plane}/plane, {planes} planes: focus curve {:?}",
                    summary.focus_curve
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 36);
}

/// Records whether any level-0 region arrived narrower than the plane.
#[derive(Default)]
struct SeesSegments(bool);

impl strata_zstack::BandHook for SeesSegments {
    fn band(&mut self, info: &strata_zstack::StackInfo, region: strata_zstack::Region, _: &[u8]) {
        self.0 |= !region.is_whole_rows(info);
    }
}

#[test]
fn qc_of_a_conversion_read_in_column_segments_equals_qc_of_whole_rows() {
    use strata_zstack::{Hooks, ImageOptions, MemorySource, QcHook, ZStackSource, write_arrays};
    for (channels, sample_type, tile_size) in [
        (1, SampleType::U8, 64),
        (3, SampleType::U16, 64),
        (1, SampleType::U16, 100),
        // Tiles smaller than the bands: segments are assembled into whole rows first.
        (1, SampleType::U8, 16),
    ] {
        let opts = SampleOptions {
            width: 700,
            height: 300,
            planes: 3,
            in_focus_plane: 1,
            channels,
            sample_type,
            seed: 11,
            ..SampleOptions::default()
        };
        let mut stack = SyntheticStack::new(opts).expect("stack");
        let info = stack.info().clone();
        let planes: Vec<Vec<u8>> = (0..info.planes)
            .map(|z| {
                let mut p = vec![0; info.height as usize * info.row_bytes()];
                stack.read_band(z, 0, info.height, &mut p).expect("plane");
                p
            })
            .collect();
        let config = strata_qc::QcConfig {
            tile_size,
            ..strata_qc::QcConfig::default()
        };
        let mut whole_rows = MemorySource::new(info.clone(), planes.clone()).expect("source");
        let expected = run_qc(&mut whole_rows, config, 64, &mut NoHook).expect("qc");

        let mut source = MemorySource::new(info.clone(), planes).expect("source");
        let mut qc = QcHook::new(&info, config).expect("hook");
        let mut seen = SeesSegments::default();
        let dir = tempfile::tempdir().expect("tempdir");
        let image = ImageOptions {
            chunk: 64,
            segment_chunks: Some(2),
            ..ImageOptions::default()
        };
        write_arrays(
            &mut source,
            dir.path(),
            &image,
            &mut Hooks(vec![&mut qc, &mut seen]),
        )
        .expect("conversion");
        assert!(seen.0, "level 0 was not read in column segments");
        let got = qc.finish().expect("qc");
        assert_eq!(
            got, expected,
            "{channels} channel(s) {sample_type:?}, tiles {tile_size}"
        );
    }
}
