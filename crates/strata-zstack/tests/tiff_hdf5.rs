//! HDF5 z-stacks (feature `hdf5`): a 3-D volume and one dataset per plane read band by band
//! equal the written pixels; inconsistent planes are errors naming the dataset.
#![cfg(feature = "hdf5")]

use hdf5_metno as hdf5;
use strata_zstack::{Error, Hdf5Layout, Hdf5Stack, SampleType, ZStackSource};

fn read_plane(s: &mut dyn ZStackSource, plane: u32, band: u32) -> Vec<u8> {
    let info = s.info().clone();
    let mut out = Vec::new();
    let mut y = 0;
    while y < info.height {
        let rows = band.min(info.height - y);
        let mut buf = vec![0u8; rows as usize * info.row_bytes()];
        s.read_band(plane, y, rows, &mut buf).expect("band");
        out.extend_from_slice(&buf);
        y += rows;
    }
    out
}

#[test]
fn volume_u8() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("stack.h5");
    let (z, h, w) = (4usize, 37usize, 53usize);
    let data: Vec<u8> = (0..z * h * w).map(|i| (i * 7 % 251) as u8).collect();
    {
        let f = hdf5::File::create(&p).expect("create");
        let ds = f
            .new_dataset::<u8>()
            .shape((z, h, w))
            .create("focus")
            .expect("dataset");
        ds.write_raw(&data).expect("write");
    }
    for layout in [Hdf5Layout::Auto, Hdf5Layout::Volume("focus".into())] {
        let mut s = Hdf5Stack::open(&p, &layout).expect("open");
        let info = s.info().clone();
        assert_eq!((info.planes, info.height, info.width), (4, 37, 53));
        assert_eq!(info.sample_type, SampleType::U8);
        for plane in 0..4u32 {
            let want = &data[plane as usize * h * w..(plane as usize + 1) * h * w];
            assert!(read_plane(&mut s, plane, 10) == want);
        }
    }
}

#[test]
fn planes_rgb_u16_and_mismatch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("planes.h5");
    let (h, w) = (21usize, 30usize);
    let planes: Vec<Vec<u16>> = (0..3)
        .map(|z| {
            (0..h * w * 3)
                .map(|i| (i * 131 + z * 7919) as u16)
                .collect()
        })
        .collect();
    {
        let f = hdf5::File::create(&p).expect("create");
        // Natural order: z2 before z10.
        for (name, data) in ["z10", "z1", "z2"]
            .iter()
            .zip([&planes[2], &planes[0], &planes[1]])
        {
            let ds = f
                .new_dataset::<u16>()
                .shape((h, w, 3))
                .create(*name)
                .expect("dataset");
            ds.write_raw(data).expect("write");
        }
        let odd = f
            .new_dataset::<u16>()
            .shape((h, w + 1, 3))
            .create("odd")
            .expect("dataset");
        odd.write_raw(&vec![0u16; h * (w + 1) * 3]).expect("write");
    }
    let layout = Hdf5Layout::Planes(vec!["z1".into(), "z2".into(), "z10".into()]);
    let mut s = Hdf5Stack::open(&p, &layout).expect("open");
    assert_eq!(s.info().channels, 3);
    for (z, plane) in planes.iter().enumerate() {
        let want: Vec<u8> = plane.iter().flat_map(|v| v.to_ne_bytes()).collect();
        assert!(read_plane(&mut s, z as u32, 8) == want, "plane {z}");
    }
    let e = Hdf5Stack::open(&p, &Hdf5Layout::Auto).expect_err("odd plane");
    let msg = e.to_string();
    assert!(
        matches!(e, Error::Input { .. }) && msg.contains("odd"),
        "{msg}"
    );
    let e = Hdf5Stack::open(&p, &Hdf5Layout::Planes(vec!["missing".into()])).expect_err("missing");
    assert!(e.to_string().contains("missing"));
    let not_h5 = dir.path().join("x.h5");
    std::fs::write(&not_h5, b"not hdf5").expect("write");
    assert!(Hdf5Stack::open(&not_h5, &Hdf5Layout::Auto).is_err());
}
