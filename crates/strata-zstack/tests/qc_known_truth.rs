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
