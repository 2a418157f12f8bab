//! `hdf5`: the whole design in one HDF5 file, `design.h5`, with its physical parameters as
//! attributes, for tools that read HDF5 (h5py, MATLAB, Julia, HDFView, …).
//!
//! Compiled only with the cargo feature `hdf5`: it links the reference HDF5 C library through
//! the `hdf5-metno` crate (`apt install libhdf5-dev` to build). The file holds:
//!
//! ```text
//! /                    attributes: format = "photonflow-design", photonflow_version,
//!                      wavelength_m (vacuum), pitch_m, medium_index, nx, ny,
//!                      material_name, material_n, material_kappa, base_m (base plate),
//!                      full_wave_m (relief of one 2π), unwrapped (1 for `--unwrap`
//!                      reliefs without 2π steps, else 0), levels (the first layer's; 0 =
//!                      continuous), units = "SI: metres, radians"
//! /layers/NAME         attributes: index (from 0, input side first), distance_m (to the
//!                      next plane), levels (0 = continuous)
//! /layers/NAME/phase   float64 [ny, nx]: the design phase, radians, wrapped into [0, 2π)
//! /layers/NAME/height  float64 [ny, nx]: relief above the base plate, metres
//! /layers/NAME/levels  uint16 [ny, nx]: the level 0 … L−1 of every pixel (quantised layers)
//! ```
//!
//! Floating-point attributes are float64, integer ones uint64, strings variable-length UTF-8.
//! Arrays are row-major with row 0 at the most negative y, as the `npy` target's. Datasets of
//! at least [`COMPRESS_MIN`] elements are chunked (tiles of up to [`CHUNK_EDGE`]² pixels) and
//! compressed (shuffle, then deflate level [`DEFLATE_LEVEL`]); no timestamps are stored, so the
//! same design gives the same bytes. The file is written under a temporary name beside
//! `design.h5`, read back and compared bit for bit with what was meant, and only then renamed.

use std::borrow::Cow;
use std::path::Path;

use ::hdf5::types::VarLenUnicode;
use ::hdf5::{File, Group, H5Type};
use photonflow_optics::OpticalSystem;
use photonflow_optics::io::temp_path_for;
use serde_json::json;

use super::Staging;
use super::arrays::{ARRAY_LAYOUT, HEIGHT_UNIT, LEVEL_MEANING};
use crate::error::{CompileError, Result};
use crate::fabricate::Fabrication;

/// Name of the file in the export folder.
pub const FILE_NAME: &str = "design.h5";
/// The root attribute `format`.
pub const FORMAT: &str = "photonflow-design";
/// The root attribute `units`.
pub const UNITS: &str = "SI: metres, radians";
/// Datasets of at least this many elements are chunked and compressed.
pub const COMPRESS_MIN: usize = 4096;
/// Largest chunk edge, pixels.
pub const CHUNK_EDGE: usize = 256;
/// zlib level of the deflate filter.
pub const DEFLATE_LEVEL: u8 = 4;

/// The value of an attribute.
#[derive(Debug, Clone, PartialEq)]
enum Attr {
    F64(f64),
    U64(u64),
    Str(String),
}

/// The values of a `[ny, nx]` dataset.
#[derive(Debug, Clone, PartialEq)]
enum Values<'a> {
    F64(Cow<'a, [f64]>),
    U16(&'a [u16]),
}

/// A group of the file: its path, attributes and datasets.
#[derive(Debug, Clone, PartialEq)]
struct Node<'a> {
    path: String,
    attrs: Vec<(&'static str, Attr)>,
    datasets: Vec<(&'static str, Values<'a>)>,
}

/// `hdf5`: one `design.h5` holding every layer of `fabrication` of `system` (see the module
/// docs); returns the layout for the manifest's `target_settings`.
///
/// Errors: a layer name that cannot name an HDF5 group (empty, `.`, holding `/`, or the name of
/// an earlier layer), a file that cannot be written, or one that reads back differently.
pub fn write_hdf5_target(
    system: &OpticalSystem,
    fabrication: &Fabrication,
    staging: &mut Staging,
) -> Result<serde_json::Value> {
    let nodes = plan(system, fabrication)?;
    let shape = [system.ny, system.nx];
    staging.file(FILE_NAME, None, "hdf5", |path| {
        let tmp = temp_path_for(path);
        let result = write(&tmp, &nodes, shape)
            .and_then(|()| verify(&tmp, &nodes, shape))
            .and_then(|()| {
                std::fs::File::open(&tmp)
                    .and_then(|f| f.sync_all())
                    .and_then(|()| std::fs::rename(&tmp, path))
                    .map_err(|e| format!("cannot move it into place: {e}"))
            });
        if result.is_err() {
            std::fs::remove_file(&tmp).ok();
        }
        result.map_err(|problem| CompileError::file(path, problem))
    })?;
    let (major, minor, release) = ::hdf5::library_version();
    Ok(json!({
        "file": FILE_NAME,
        "groups": {
            "/": "attributes format, photonflow_version, wavelength_m, pitch_m, medium_index, \
                  nx, ny, material_name, material_n, material_kappa, base_m, full_wave_m, \
                  levels, units",
            "/layers/NAME": "attributes index, distance_m, levels; datasets phase, height, \
                             levels (quantised layers)",
        },
        "arrays": ARRAY_LAYOUT,
        "phase": "float64, radians, the design phase wrapped into [0, 2π)",
        "height": format!("float64, {HEIGHT_UNIT}"),
        "levels": format!("uint16, {LEVEL_MEANING}; the attribute levels = 0 means continuous"),
        "attributes": "float64, uint64 or UTF-8 strings; lengths in metres",
        "compression": format!(
            "datasets of ≥ {COMPRESS_MIN} elements: chunks of up to {CHUNK_EDGE}×{CHUNK_EDGE}, \
             shuffle + deflate {DEFLATE_LEVEL}"
        ),
        "hdf5_library": format!("{major}.{minor}.{release}"),
    }))
}

/// What the file holds: the root, `/layers`, and one group per layer.
fn plan<'a>(system: &OpticalSystem, fabrication: &'a Fabrication) -> Result<Vec<Node<'a>>> {
    check_names(system)?;
    let count = |levels: Option<u32>| Attr::U64(levels.map_or(0, u64::from));
    let material = &fabrication.process.material;
    let root = Node {
        path: "/".into(),
        attrs: vec![
            ("format", Attr::Str(FORMAT.into())),
            (
                "photonflow_version",
                Attr::Str(env!("CARGO_PKG_VERSION").into()),
            ),
            ("wavelength_m", Attr::F64(system.wavelength_m)),
            ("pitch_m", Attr::F64(system.pitch_m)),
            ("medium_index", Attr::F64(system.medium_index)),
            ("nx", Attr::U64(system.nx as u64)),
            ("ny", Attr::U64(system.ny as u64)),
            ("material_name", Attr::Str(material.name.clone())),
            ("material_n", Attr::F64(material.n)),
            ("material_kappa", Attr::F64(material.kappa)),
            ("base_m", Attr::F64(fabrication.process.base_m)),
            ("full_wave_m", Attr::F64(fabrication.full_wave_m)),
            (
                "unwrapped",
                Attr::U64(u64::from(fabrication.process.unwrap)),
            ),
            (
                "levels",
                count(fabrication.layers.first().and_then(|r| r.level_count)),
            ),
            ("units", Attr::Str(UNITS.into())),
        ],
        datasets: Vec::new(),
    };
    let layers = Node {
        path: "/layers".into(),
        attrs: Vec::new(),
        datasets: Vec::new(),
    };
    let groups = system
        .layers
        .iter()
        .zip(&fabrication.layers)
        .enumerate()
        .map(|(index, (layer, relief))| {
            let phase = layer.phase.iter().map(|&p| wrap(p)).collect();
            let mut datasets = vec![
                ("phase", Values::F64(Cow::Owned(phase))),
                ("height", Values::F64(Cow::Borrowed(&relief.heights_m[..]))),
            ];
            if let Some(levels) = &relief.levels {
                datasets.push(("levels", Values::U16(levels)));
            }
            Node {
                path: format!("/layers/{}", layer.name),
                attrs: vec![
                    ("index", Attr::U64(index as u64)),
                    ("distance_m", Attr::F64(layer.distance_m)),
                    ("levels", count(relief.level_count)),
                ],
                datasets,
            }
        });
    Ok([root, layers].into_iter().chain(groups).collect())
}

/// A phase in radians wrapped into `[0, 2π)`.
fn wrap(phase: f32) -> f64 {
    photonflow_optics::system::wrap_phase(f64::from(phase))
}

/// Every layer name must name a distinct HDF5 group under `/layers`.
fn check_names(system: &OpticalSystem) -> Result<()> {
    for (k, layer) in system.layers.iter().enumerate() {
        let name = &layer.name;
        if name.is_empty() || name == "." || name.contains('/') {
            return Err(CompileError::Design(format!(
                "layer {k} is named '{name}', which cannot name an HDF5 group (it must be \
                 non-empty, not '.', and hold no '/'); rename the layer in system.json"
            )));
        }
        if system.layers[..k].iter().any(|l| &l.name == name) {
            return Err(CompileError::Design(format!(
                "two layers are named '{name}'; the hdf5 target needs distinct layer names — \
                 rename one in system.json"
            )));
        }
    }
    Ok(())
}

/// Writes `nodes` to a new file at `path`.
fn write(path: &Path, nodes: &[Node], shape: [usize; 2]) -> Result<(), String> {
    let failed = |what: &str, e: ::hdf5::Error| format!("cannot write {what}: {e}");
    let file = File::create(path).map_err(|e| failed("the file", e))?;
    for node in nodes {
        let group = if node.path == "/" {
            file.group("/")
        } else {
            file.create_group_builder()
                .obj_track_times(false)
                .create(node.path.as_str())
        }
        .map_err(|e| failed(&node.path, e))?;
        for (name, value) in &node.attrs {
            write_attr(&group, name, value)
                .map_err(|e| failed(&format!("attribute {name} of {}", node.path), e))?;
        }
        for (name, values) in &node.datasets {
            let r = match values {
                Values::F64(v) => write_dataset(&group, name, shape, v),
                Values::U16(v) => write_dataset(&group, name, shape, v),
            };
            r.map_err(|e| failed(&format!("{}/{name}", node.path), e))?;
        }
    }
    file.close().map_err(|e| failed("the file", e))
}

fn write_attr(group: &Group, name: &str, value: &Attr) -> ::hdf5::Result<()> {
    match value {
        Attr::F64(v) => group.new_attr::<f64>().create(name)?.write_scalar(v),
        Attr::U64(v) => group.new_attr::<u64>().create(name)?.write_scalar(v),
        Attr::Str(s) => {
            let s: VarLenUnicode = s.parse().map_err(|_| {
                ::hdf5::Error::from(format!("'{}' holds a NUL character", s.escape_debug()))
            })?;
            group
                .new_attr::<VarLenUnicode>()
                .create(name)?
                .write_scalar(&s)
        }
    }
}

fn write_dataset<T: H5Type>(
    group: &Group,
    name: &str,
    [ny, nx]: [usize; 2],
    values: &[T],
) -> ::hdf5::Result<()> {
    let view = ndarray::ArrayView2::from_shape((ny, nx), values).map_err(|e| {
        ::hdf5::Error::from(format!(
            "{} values do not fill {ny}×{nx} pixels ({e})",
            values.len()
        ))
    })?;
    let mut builder = group.new_dataset_builder().obj_track_times(false);
    if values.len() >= COMPRESS_MIN {
        // Shuffle must come before deflate: HDF5 refuses the reverse order.
        builder = builder
            .chunk((ny.min(CHUNK_EDGE), nx.min(CHUNK_EDGE)))
            .shuffle()
            .deflate(DEFLATE_LEVEL);
    }
    builder.with_data(view).create(name).map(drop)
}

/// Reads the file at `path` back and checks that it holds `nodes` exactly: every attribute
/// and every dataset, of the written type and shape, bit for bit.
fn verify(path: &Path, nodes: &[Node], shape: [usize; 2]) -> Result<(), String> {
    let unreadable = |what: &str, e: ::hdf5::Error| {
        format!("cannot read {what} back from the file just written: {e}")
    };
    let differs = |what: &str, detail: String| {
        format!(
            "{what} reads back differently from what was written ({detail}); the HDF5 library \
             or the disk is faulty — reinstall libhdf5 or write elsewhere"
        )
    };
    let file = File::open(path).map_err(|e| unreadable("the file", e))?;
    for node in nodes {
        let group = file
            .group(&node.path)
            .map_err(|e| unreadable(&node.path, e))?;
        for (name, value) in &node.attrs {
            let what = format!("attribute {name} of {}", node.path);
            let back = read_attr(&group, name, value).map_err(|e| unreadable(&what, e))?;
            if !same_attr(&back, value) {
                return Err(differs(&what, format!("{back:?}, not {value:?}")));
            }
        }
        for (name, values) in &node.datasets {
            let what = format!("{}/{name}", node.path);
            let ds = group.dataset(name).map_err(|e| unreadable(&what, e))?;
            if ds.shape() != shape {
                return Err(differs(
                    &what,
                    format!("shape {:?}, not {shape:?}", ds.shape()),
                ));
            }
            let reader = ds.as_reader().no_convert();
            let first_difference = match values {
                Values::F64(v) => {
                    let back = reader.read_raw::<f64>().map_err(|e| unreadable(&what, e))?;
                    let bits = |x: &f64| x.to_bits();
                    first_difference(back.iter().map(bits), v.iter().map(bits))
                }
                Values::U16(v) => {
                    let back = reader.read_raw::<u16>().map_err(|e| unreadable(&what, e))?;
                    first_difference(back.iter().copied(), v.iter().copied())
                }
            };
            if let Some(i) = first_difference {
                let (row, col) = (i / shape[1], i % shape[1]);
                return Err(differs(&what, format!("first at row {row}, column {col}")));
            }
        }
    }
    Ok(())
}

/// Reads attribute `name` as the type of `like`: numbers without any conversion, strings
/// (which HDF5 always converts) only when stored as variable-length UTF-8.
fn read_attr(group: &Group, name: &str, like: &Attr) -> ::hdf5::Result<Attr> {
    let attr = group.attr(name)?;
    let reader = attr.as_reader();
    Ok(match like {
        Attr::F64(_) => Attr::F64(reader.no_convert().read_scalar()?),
        Attr::U64(_) => Attr::U64(reader.no_convert().read_scalar()?),
        Attr::Str(_) => {
            let stored = attr.dtype()?.to_descriptor()?;
            if stored != VarLenUnicode::type_descriptor() {
                return Err(
                    format!("stored as {stored}, not a variable-length UTF-8 string").into(),
                );
            }
            Attr::Str(reader.read_scalar::<VarLenUnicode>()?.as_str().into())
        }
    })
}

/// Equal, floats bit for bit.
fn same_attr(a: &Attr, b: &Attr) -> bool {
    match (a, b) {
        (Attr::F64(a), Attr::F64(b)) => a.to_bits() == b.to_bits(),
        _ => a == b,
    }
}

/// Index of the first element where `a` and `b` differ (both have `ny·nx`: the shape was
/// checked, and the values filled it when written).
fn first_difference<T: PartialEq>(
    a: impl Iterator<Item = T>,
    b: impl Iterator<Item = T>,
) -> Option<usize> {
    a.zip(b).position(|(x, y)| x != y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{Source, Target, export};
    use crate::fabricate::{Process, fabricate};
    use crate::manifest::Manifest;
    use photonflow_optics::system::{Layer, Material};
    use std::f64::consts::TAU;

    /// An `nx`×`ny` system of two layers: `L0` trained with 4 levels, `L1` continuous, their
    /// phases spanning −6 … 12.2 rad (so wrapping matters), the first pixel of `L1` a tiny
    /// negative phase (which must wrap to 0, not 2π).
    fn system(nx: usize, ny: usize) -> OpticalSystem {
        let mut s = OpticalSystem::new("t", 0.75e-3, nx, ny, 0.4e-3).unwrap();
        let phase = |k: usize| -> Vec<f32> {
            (0..nx * ny)
                .map(|i| ((i * 7 + k * 3) % 97) as f32 * 0.19 - 6.0)
                .collect()
        };
        let mut l0 = Layer::phase_only("L0", phase(0), 0.03);
        l0.levels = Some(4);
        let mut l1 = Layer::phase_only("L1", phase(1), 0.02);
        l1.phase[0] = -1e-30;
        s.layers = vec![l0, l1];
        s
    }

    fn fabrication(s: &OpticalSystem) -> Fabrication {
        let process = Process {
            material: Material::constant("thz-resin", 1.72, 0.03),
            levels: None,
            base_m: 1e-3,
            unwrap: false,
        };
        fabricate(s, &process).unwrap()
    }

    fn export_to(out: &Path, s: &OpticalSystem, f: &Fabrication) -> Result<Manifest> {
        let source = Source {
            model: Path::new("model"),
            sha256: "0".repeat(64),
            simulation: None,
            gds: Default::default(),
            slm: Default::default(),
            stl_unit: Default::default(),
        };
        export(s, Some(f), Target::Hdf5, out, &source)
    }

    /// Held by every test for its whole run. A child process (the h5py test's python) inherits
    /// the descriptors of files that other threads hold open, with their `flock` locks; HDF5
    /// then cannot reopen such a file until the child exits ("unable to lock file"). So the
    /// tests take turns.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
        ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn attr<T: H5Type>(g: &Group, name: &str) -> T {
        g.attr(name)
            .unwrap()
            .as_reader()
            .no_convert()
            .read_scalar()
            .unwrap()
    }

    fn text(g: &Group, name: &str) -> String {
        let a = g.attr(name).unwrap();
        assert_eq!(
            a.dtype().unwrap().to_descriptor().unwrap(),
            VarLenUnicode::type_descriptor()
        );
        a.read_scalar::<VarLenUnicode>().unwrap().as_str().into()
    }

    #[test]
    fn a_design_reads_back_with_its_layout_values_and_metadata() {
        let _turn = one_at_a_time();
        let (nx, ny) = (5, 3);
        let s = system(nx, ny);
        let f = fabrication(&s);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let manifest = export_to(&out, &s, &f).unwrap();
        assert_eq!(manifest.target, "hdf5");
        assert_eq!(manifest.files.len(), 1);
        let entry = &manifest.files[0];
        assert_eq!(
            (entry.path.as_str(), entry.kind.as_str()),
            (FILE_NAME, "hdf5")
        );
        assert_eq!(manifest.target_settings["file"], FILE_NAME);
        let mut names: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["design.h5", "manifest.json"],
            "no temporary file is left"
        );

        let file = File::open(out.join(FILE_NAME)).unwrap();
        assert_eq!(text(&file, "format"), "photonflow-design");
        assert_eq!(text(&file, "units"), "SI: metres, radians");
        assert_eq!(text(&file, "material_name"), "thz-resin");
        assert_eq!(text(&file, "photonflow_version"), env!("CARGO_PKG_VERSION"));
        for (name, want) in [
            ("wavelength_m", 0.75e-3),
            ("pitch_m", 0.4e-3),
            ("medium_index", 1.0),
            ("material_n", 1.72),
            ("material_kappa", 0.03),
            ("base_m", 1e-3),
            ("full_wave_m", f.full_wave_m),
        ] {
            assert_eq!(attr::<f64>(&file, name), want, "{name}");
        }
        assert_eq!(attr::<u64>(&file, "nx"), 5);
        assert_eq!(attr::<u64>(&file, "ny"), 3);
        assert_eq!(attr::<u64>(&file, "levels"), 4, "the first layer's");

        let layers = file.group("layers").unwrap();
        assert_eq!(layers.member_names().unwrap(), ["L0", "L1"]);
        for (k, (layer, relief)) in s.layers.iter().zip(&f.layers).enumerate() {
            let g = layers.group(&layer.name).unwrap();
            assert_eq!(attr::<u64>(&g, "index"), k as u64);
            assert_eq!(attr::<f64>(&g, "distance_m"), layer.distance_m);
            assert_eq!(attr::<u64>(&g, "levels"), [4, 0][k]);
            let phase = g.dataset("phase").unwrap();
            assert_eq!(phase.shape(), [ny, nx]);
            assert!(!phase.is_chunked(), "small datasets stay contiguous");
            let phase: Vec<f64> = phase.as_reader().no_convert().read_raw().unwrap();
            for (&got, &p) in phase.iter().zip(&layer.phase) {
                assert!((0.0..TAU).contains(&got), "{got}");
                let d = (got - f64::from(p)).rem_euclid(TAU);
                assert!(d.min(TAU - d) < 1e-12, "{got} vs {p}");
            }
            let height = g.dataset("height").unwrap();
            let height: Vec<f64> = height.as_reader().no_convert().read_raw().unwrap();
            assert_eq!(height, relief.heights_m);
            match &relief.levels {
                Some(levels) => {
                    let back: Vec<u16> = g.dataset("levels").unwrap().read_raw().unwrap();
                    assert_eq!(&back, levels);
                }
                None => assert!(!g.link_exists("levels")),
            }
        }
        let l1: Vec<f64> = layers.dataset("L1/phase").unwrap().read_raw().unwrap();
        assert_eq!(l1[0], 0.0, "a tiny negative phase wraps to 0, not 2π");
        // Wrapping: −6 rad is stored as 2π − 6.
        let l0: Vec<f64> = layers.dataset("L0/phase").unwrap().read_raw().unwrap();
        assert_eq!(l0[0], f64::from(-6.0f32).rem_euclid(TAU));
    }

    #[test]
    fn large_layers_are_chunked_compressed_and_reproducible() {
        let _turn = one_at_a_time();
        let (nx, ny) = (300, 70);
        let s = system(nx, ny);
        let f = fabrication(&s);
        let dir = tempfile::tempdir().unwrap();
        let first = export_to(&dir.path().join("a"), &s, &f).unwrap();
        let second = export_to(&dir.path().join("b"), &s, &f).unwrap();
        assert_eq!(
            first.files[0].sha256, second.files[0].sha256,
            "the same design gives the same bytes"
        );
        let file = File::open(dir.path().join("a").join(FILE_NAME)).unwrap();
        for name in [
            "L0/phase",
            "L0/height",
            "L0/levels",
            "L1/phase",
            "L1/height",
        ] {
            let ds = file.dataset(&format!("layers/{name}")).unwrap();
            assert_eq!(ds.chunk(), Some(vec![70, 256]), "{name}");
            assert_eq!(
                ds.filters(),
                [
                    ::hdf5::filters::Filter::Shuffle,
                    ::hdf5::filters::Filter::Deflate(DEFLATE_LEVEL)
                ],
                "{name}"
            );
            let raw = (nx * ny * ds.dtype().unwrap().size()) as u64;
            assert!(ds.storage_size() < raw, "{name}: {} B", ds.storage_size());
        }
        let levels: Vec<u16> = file
            .dataset("layers/L0/levels")
            .unwrap()
            .read_raw()
            .unwrap();
        assert_eq!(Some(&levels), f.layers[0].levels.as_ref());
    }

    #[test]
    fn a_file_that_reads_back_differently_is_caught() {
        let _turn = one_at_a_time();
        let s = system(4, 2);
        let f = fabrication(&s);
        let mut nodes = plan(&s, &f).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        write(&path, &nodes, [2, 4]).unwrap();
        verify(&path, &nodes, [2, 4]).unwrap();
        // What was meant differs from the file in one height, then in one attribute.
        let mut heights = f.layers[1].heights_m.clone();
        heights[6] = f64::from_bits(heights[6].to_bits() + 1);
        let meant_height = nodes[3].datasets[1].clone();
        nodes[3].datasets[1].1 = Values::F64(Cow::Owned(heights));
        let e = verify(&path, &nodes, [2, 4]).unwrap_err();
        assert!(
            e.contains("/layers/L1/height") && e.contains("row 1, column 2"),
            "{e}"
        );
        nodes[3].datasets[1] = meant_height;
        nodes[0].attrs[2].1 = Attr::F64(0.75e-3 * (1.0 + f64::EPSILON));
        let e = verify(&path, &nodes, [2, 4]).unwrap_err();
        assert!(e.contains("attribute wavelength_m of /"), "{e}");
    }

    #[test]
    fn layer_names_that_cannot_name_a_group_are_refused() {
        let _turn = one_at_a_time();
        let dir = tempfile::tempdir().unwrap();
        for (names, want) in [
            (["a/b", "c"], "'a/b'"),
            (["", "c"], "''"),
            ([".", "c"], "'.'"),
            (["c", "c"], "two layers are named 'c'"),
        ] {
            let mut s = system(3, 3);
            for (l, n) in s.layers.iter_mut().zip(names) {
                l.name = n.into();
            }
            let out = dir.path().join("out");
            let e = export_to(&out, &s, &fabrication(&s))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want) && e.contains("rename"), "{e}");
            assert!(!out.exists());
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing left"
        );
    }

    /// h5py (the reader most users have) checks the file: layout, dtypes, shapes, attributes
    /// and every value against what the fabrication holds.
    const H5PY_SCRIPT: &str = r#"
import json, sys
import h5py, numpy as np

path, expected = sys.argv[1], json.load(open(sys.argv[2]))
with h5py.File(path, "r") as f:
    for name, want in expected["attrs"].items():
        got = f.attrs[name]
        assert got == want, (name, got, want)
    assert isinstance(f.attrs["format"], str), type(f.attrs["format"])
    assert f.attrs["nx"].dtype == np.uint64 and f.attrs["pitch_m"].dtype == np.float64
    assert list(f["layers"]) == list(expected["layers"]), list(f["layers"])
    shape = (expected["attrs"]["ny"], expected["attrs"]["nx"])
    for name, layer in expected["layers"].items():
        g = f["layers"][name]
        for a, want in layer["attrs"].items():
            assert g.attrs[a] == want, (name, a, g.attrs[a], want)
        assert sorted(g) == sorted(layer["data"]), (name, list(g))
        for d, want in layer["data"].items():
            ds = g[d]
            dtype = np.uint16 if d == "levels" else np.float64
            assert ds.dtype == dtype and ds.shape == shape, (name, d, ds.dtype, ds.shape)
            assert ds.compression == "gzip" and ds.shuffle, (name, d)
            data = ds[()]
            assert np.array_equal(data, np.array(want, dtype=dtype).reshape(shape)), (name, d)
        assert np.all((0 <= g["phase"][()]) & (g["phase"][()] < 2 * np.pi)), name
print(f"h5py {h5py.__version__} (HDF5 {h5py.version.hdf5_version}): {path.rsplit('/', 1)[-1]} "
      f"{shape[0]}x{shape[1]}, layers {list(expected['layers'])}: attributes, dtypes, shapes, "
      f"gzip+shuffle and all values match")
"#;

    #[test]
    fn h5py_reads_the_file() {
        let Some(python) = std::env::var_os("PHOTONFLOW_PYTHON") else {
            eprintln!(
                "note: PHOTONFLOW_PYTHON is not set, so h5py_reads_the_file did not run; set it \
                 to a python interpreter that has h5py to check design.h5 with h5py"
            );
            return;
        };
        let _turn = one_at_a_time();
        let (nx, ny) = (80, 64);
        let s = system(nx, ny);
        let f = fabrication(&s);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        export_to(&out, &s, &f).unwrap();
        let layers: serde_json::Map<String, serde_json::Value> = s
            .layers
            .iter()
            .zip(&f.layers)
            .enumerate()
            .map(|(k, (l, r))| {
                let phase: Vec<f64> = l.phase.iter().map(|&p| wrap(p)).collect();
                let mut data = json!({ "phase": phase, "height": r.heights_m });
                if let Some(levels) = &r.levels {
                    data["levels"] = json!(levels);
                }
                let attrs = json!({
                    "index": k,
                    "distance_m": l.distance_m,
                    "levels": r.level_count.unwrap_or(0),
                });
                (l.name.clone(), json!({ "attrs": attrs, "data": data }))
            })
            .collect();
        let expected = json!({
            "attrs": {
                "format": FORMAT,
                "photonflow_version": env!("CARGO_PKG_VERSION"),
                "wavelength_m": s.wavelength_m,
                "pitch_m": s.pitch_m,
                "medium_index": s.medium_index,
                "nx": nx,
                "ny": ny,
                "material_name": "thz-resin",
                "material_n": 1.72,
                "material_kappa": 0.03,
                "base_m": 1e-3,
                "full_wave_m": f.full_wave_m,
                "levels": 4,
                "units": UNITS,
            },
            "layers": layers,
        });
        let expected_path = dir.path().join("expected.json");
        std::fs::write(&expected_path, expected.to_string()).unwrap();
        let output = std::process::Command::new(&python)
            .args(["-c", H5PY_SCRIPT])
            .arg(out.join(FILE_NAME))
            .arg(&expected_path)
            .output()
            .expect("run PHOTONFLOW_PYTHON");
        assert!(
            output.status.success(),
            "{python:?} rejected design.h5:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!("{}", String::from_utf8_lossy(&output.stdout).trim());
    }
}
