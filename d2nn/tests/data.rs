//! MNIST and Fashion-MNIST from `$PHOTONFLOW_DATA_DIR` (CI points it at the shared datasets).
//! Skipped, with a message, only when the variable is unset.

use std::path::PathBuf;
use std::time::Instant;

use photonflow_d2nn::data::{Checksum, DataSource, SearchPaths, verify};

fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("PHOTONFLOW_DATA_DIR").filter(|v| !v.is_empty());
    if dir.is_none() {
        eprintln!("PHOTONFLOW_DATA_DIR is not set: skipping the real-data test");
    }
    dir.map(PathBuf::from)
}

fn paths(dir: PathBuf) -> SearchPaths {
    SearchPaths {
        env_dir: Some(dir),
        ..SearchPaths::default()
    }
}

#[test]
fn mnist_and_fashion_mnist() {
    let Some(dir) = data_dir() else { return };
    let p = paths(dir);
    for (name, first_label, first_test_label, classes) in [
        ("mnist", 5, 7, ["0", "9"]),
        ("fashion-mnist", 9, 9, ["T-shirt/top", "Ankle boot"]),
    ] {
        let t = Instant::now();
        let s = p.load(name, &Default::default()).unwrap();
        eprintln!(
            "{name}: loaded train+test in {:.3} s",
            t.elapsed().as_secs_f64()
        );
        assert_eq!((s.train.len(), s.test.len()), (60000, 10000), "{name}");
        assert_eq!((s.train.rows, s.train.cols), (28, 28));
        assert_eq!((s.test.rows, s.test.cols), (28, 28));
        assert_eq!(s.train.images.len(), 60000 * 784);
        assert_eq!(s.train.classes(), 10);
        assert_eq!(s.train.class_names[0], classes[0]);
        assert_eq!(s.train.class_names[9], classes[1]);
        assert_eq!(s.train.label(0), first_label, "{name}");
        assert_eq!(s.test.label(0), first_test_label, "{name}");
        // MNIST pixels are black at the border; the first digit (a 5) is not empty.
        assert_eq!(s.train.image(0)[0], 0);
        let ink: u32 = s.train.image(0).iter().map(|&v| u32::from(v)).sum();
        assert!(ink > 10_000, "{name}: {ink}");
        if name == "mnist" {
            assert_eq!(
                s.train.class_counts(),
                [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
            );
            assert_eq!(
                s.test.class_counts(),
                [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
            );
            // Values read independently (Python's gzip module) from the published files.
            assert_eq!(s.train.image(0)[14 * 28 + 10..14 * 28 + 14], [0, 0, 0, 81]);
            assert_eq!(s.train.image(0)[6 * 28 + 12], 170);
            assert_eq!(ink, 27525);
            assert_eq!(s.test.image(9999)[14 * 28 + 14], 18);
        } else {
            assert_eq!(s.train.class_counts(), [6000; 10]);
            assert_eq!(s.test.class_counts(), [1000; 10]);
            assert_eq!(
                s.train.image(0)[14 * 28 + 10..14 * 28 + 14],
                [0, 0, 237, 226]
            );
            assert_eq!(ink, 76247);
            assert_eq!(s.test.image(9999)[14 * 28 + 14], 132);
        }
        let DataSource::Idx(files) = p.locate(name).unwrap() else {
            panic!("{name} should be IDX")
        };
        let checks = verify(&files).unwrap();
        assert!(
            checks.iter().all(|c| c.checksum == Checksum::Ok),
            "{name}: {checks:?}"
        );
    }
}
