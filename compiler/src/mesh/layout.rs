//! The files a compiled mesh is written to: `layout.json` (the mesh, its convention and how
//! well it reproduces the target) and a CSV phase table (with heater voltages when a `Vπ` is
//! given).

use std::f64::consts::PI;
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use photonflow_optics::io::write_atomic;
use serde::{Deserialize, Serialize};
use serde_json::ser::Formatter;

use super::chip::{CorrectionReport, Imperfections};
use super::decompose::{Attenuator, Mesh, Mzi, check_columns, depth};
use super::mzi::Convention;
use super::svd::SvdInfo;
use crate::error::{CompileError, Result, read_text};

/// `format` of a layout file.
pub const FORMAT: &str = "photonflow-mesh-layout";
/// Its version.
pub const VERSION: u32 = 1;

/// `layout.json`: a mesh that implements `diag(e^{i·output_phases}) · T_K ⋯ T_1` (`mzis` in
/// the order light meets them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// The statement of the MZI convention its phases are in ([`Convention::statement`]).
    pub convention: String,
    /// `clements` or `reck`.
    pub method: String,
    /// Modes.
    pub n: usize,
    /// MZI columns.
    pub depth: usize,
    /// Number of MZIs, `N(N−1)/2`.
    pub mzi_count: usize,
    /// The MZIs, in the order light meets them.
    pub mzis: Vec<Mzi>,
    /// Attenuators (SVD meshes): one column between the two unitary meshes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attenuators: Vec<Attenuator>,
    /// Output phase screen, radians.
    pub output_phases: Vec<f64>,
    /// For SVD meshes: the matrix's shape, singular values and scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub svd: Option<SvdInfo>,
    /// `‖U − U_mesh‖_F / ‖U‖_F`: of the ideal mesh, or of the chip it was compiled for
    /// (`imperfections`), with the phases as written.
    pub error: f64,
    /// Seconds the decomposition took (without file I/O).
    pub seconds: f64,
    /// The matrix file it was compiled from.
    pub source: String,
    /// The chip the phases were compiled for (`decompose --imperfections`), when not ideal;
    /// `mesh simulate` uses it unless given another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imperfections: Option<Imperfections>,
    /// The correction of that chip's splitter errors (`decompose --correct`): the chip
    /// against the matrix with the ideal phases and with the phases as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction: Option<CorrectionReport>,
}

impl Layout {
    /// A layout of `mesh` (photonflow's convention), compiled by `method` from `source`, with
    /// its phases written in `convention`.
    pub fn new(
        mesh: &Mesh,
        convention: Convention,
        method: &str,
        error: f64,
        seconds: f64,
        source: &str,
    ) -> Self {
        let written = mesh.convert(Convention::Photonflow, convention);
        Self {
            format: FORMAT.into(),
            version: VERSION,
            convention: convention.statement().into(),
            method: method.into(),
            n: mesh.n,
            depth: mesh.depth(),
            mzi_count: mesh.mzis.len(),
            mzis: written.mzis,
            attenuators: written.attenuators,
            output_phases: written.output_phases,
            svd: None,
            error,
            seconds,
            source: source.into(),
            imperfections: None,
            correction: None,
        }
    }

    /// The convention its phases are in (checked by [`Layout::load`]).
    pub fn convention(&self) -> Convention {
        Convention::named(&self.convention).unwrap_or_default()
    }

    /// The mesh it describes, in photonflow's convention.
    pub fn mesh(&self) -> Mesh {
        let written = Mesh {
            n: self.n,
            mzis: self.mzis.clone(),
            attenuators: self.attenuators.clone(),
            output_phases: self.output_phases.clone(),
        };
        written.convert(self.convention(), Convention::Photonflow)
    }

    /// Reads and checks a layout file: format, convention, modes of every MZI, phases finite,
    /// the MZI count and depth it states, columns that agree with the order light meets the
    /// elements (`check_columns`), and the SVD block within the mesh.
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |problem: String| CompileError::file(path, problem);
        let text = read_text(path)?;
        let l: Layout = serde_json::from_str(&text).map_err(|e| bad(format!("{e}")))?;
        if l.format != FORMAT || l.version > VERSION {
            return Err(bad(format!(
                "is {} version {}; this photonflow reads {FORMAT} up to version {VERSION}",
                l.format, l.version
            )));
        }
        if Convention::named(&l.convention).is_none() {
            let known: Vec<_> = Convention::ALL.iter().map(|c| c.statement()).collect();
            return Err(bad(format!(
                "uses the MZI convention '{}'; this photonflow reads '{}'",
                l.convention,
                known.join("' or '")
            )));
        }
        if l.output_phases.len() != l.n {
            return Err(bad(format!(
                "has {} output phases for {} modes",
                l.output_phases.len(),
                l.n
            )));
        }
        // Where the elements stand (their modes and columns) first, then their settings.
        check_columns(l.n, &l.mzis, &l.attenuators).map_err(bad)?;
        if let Some((i, z)) =
            (l.mzis.iter().enumerate()).find(|(_, z)| !z.theta.is_finite() || !z.phi.is_finite())
        {
            return Err(bad(format!(
                "MZI {i} has a non-finite phase (θ = {}, φ = {})",
                z.theta, z.phi
            )));
        }
        if let Some((i, a)) =
            (l.attenuators.iter().enumerate()).find(|(_, a)| !(0.0..=1.0).contains(&a.transmission))
        {
            return Err(bad(format!(
                "attenuator {i} has the transmission {}; give one in [0, 1]",
                a.transmission
            )));
        }
        if let Some(p) = l.output_phases.iter().find(|p| !p.is_finite()) {
            return Err(bad(format!("output phase {p} is not finite")));
        }
        if l.mzi_count != l.mzis.len() {
            return Err(bad(format!(
                "says mzi_count {} but lists {} MZIs",
                l.mzi_count,
                l.mzis.len()
            )));
        }
        let depth = depth(&l.mzis, &l.attenuators);
        if l.depth != depth {
            return Err(bad(format!(
                "says depth {} but its elements stand in {depth} columns",
                l.depth
            )));
        }
        if let Some(s) = &l.svd
            && !((1..=l.n).contains(&s.rows)
                && (1..=l.n).contains(&s.cols)
                && s.scale.is_finite()
                && s.scale > 0.0)
        {
            return Err(bad(format!(
                "its svd block is {}×{} with scale {}; a block of a {}-mode mesh has 1 … {} \
                 rows and columns and a finite positive scale",
                s.rows, s.cols, s.scale, l.n, l.n
            )));
        }
        Ok(l)
    }

    /// Writes the layout as indented JSON, one line per MZI (`Rows`), atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut json = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut json, Rows::default());
        self.serialize(&mut ser).expect("layouts serialise");
        write_atomic(path, |w| w.write_all(&json))
            .map_err(|e| CompileError::file(path, format!("cannot write it: {e}")))
    }

    /// The phase table as CSV: one row per MZI in light order, then one per attenuator and one
    /// per output phase, each phase (radians) the shortest decimal that reads back as the same
    /// `f64`; with `heaters.vpi` also every thermal heater's voltage, with `heaters.ppi` its
    /// power ([`Heaters`]).
    pub fn csv(&self, heaters: Heaters) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "# {}", self.convention);
        let _ = writeln!(
            t,
            "# implemented matrix: diag(exp(i*output_phase)) * T_K ... T_1, rows in light order"
        );
        // The heater columns asked for: their names, and each heater's value at a phase (the
        // power in mW).
        type Value = fn(f64, f64) -> f64;
        let columns: Vec<(&str, f64, Value)> = [
            heaters
                .vpi
                .map(|vpi| (",theta_V,phi_V", vpi, heater_volts as Value)),
            heaters
                .ppi
                .map(|ppi| (",theta_mW,phi_mW", 1e3 * ppi, heater_power as Value)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let names: String = columns.iter().map(|(names, ..)| *names).collect();
        let _ = writeln!(t, "element,index,column,mode,theta_rad,phi_rad{names}");
        // The extra columns of a row whose heaters are at `theta` and `phi` (either absent).
        let extra = |t: &mut String, theta: Option<f64>, phi: Option<f64>| {
            for &(_, drive, value) in &columns {
                let cell = |p: Option<f64>| {
                    p.map(|p| format!("{:.9}", value(drive, p)))
                        .unwrap_or_default()
                };
                let _ = write!(t, ",{},{}", cell(theta), cell(phi));
            }
            t.push('\n');
        };
        for (i, z) in self.mzis.iter().enumerate() {
            let _ = write!(
                t,
                "mzi,{i},{},{},{:e},{:e}",
                z.column, z.mode, z.theta, z.phi
            );
            extra(&mut t, Some(z.theta), Some(z.phi));
        }
        for (i, a) in self.attenuators.iter().enumerate() {
            let _ = write!(t, "attenuator,{i},{},{},{:e},", a.column, a.mode, a.theta);
            extra(&mut t, Some(a.theta), None);
        }
        for (m, &p) in self.output_phases.iter().enumerate() {
            let _ = write!(t, "output,{m},{},{m},,{p:e}", self.depth);
            extra(&mut t, None, Some(p));
        }
        t
    }

    /// The power of every thermal heater together, watts, for `ppi` watts per π shift (the
    /// phase of a thermal shifter grows with its power, `P = Pπ·φ/π`): the MZIs' `θ` and `φ`,
    /// the attenuators' `θ` and the output phases, as written (`θ ∈ [0, π]`, the others in
    /// `[0, 2π)`).
    pub fn heater_power(&self, ppi: f64) -> f64 {
        let mzis = self.mzis.iter().map(|z| z.theta + z.phi);
        let attenuators = self.attenuators.iter().map(|a| a.theta);
        let phases: f64 = mzis
            .chain(attenuators)
            .chain(self.output_phases.iter().copied())
            .sum();
        heater_power(ppi, phases)
    }
}

/// The drive of a thermal heater at the phase `phase` for `vpi` volts per π shift:
/// `φ = π·(V/Vπ)²`, so `V = Vπ·√(φ/π)`.
fn heater_volts(vpi: f64, phase: f64) -> f64 {
    vpi * (phase / PI).sqrt()
}

/// The power of a thermal heater at the phase `phase` for `ppi` per π shift (in its unit):
/// the phase grows with the power, `P = Pπ·φ/π`.
fn heater_power(ppi: f64, phase: f64) -> f64 {
    ppi * phase / PI
}

/// What drives the thermal phase shifters, for the phase table ([`Layout::csv`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Heaters {
    /// Volts for a π shift, `φ = π·(V/Vπ)²`: the table gets `V = Vπ·√(φ/π)`.
    pub vpi: Option<f64>,
    /// Watts for a π shift, `P = Pπ·φ/π`: the table gets the power, in mW.
    pub ppi: Option<f64>,
}

/// Indented JSON with every container below the second level on one line: one line per MZI
/// (`{"column": 0, "mode": 2, "theta": …, "phi": …}`), a table to read by eye, and a third
/// smaller than indenting every field.
#[derive(Default)]
struct Rows {
    pretty: Pretty,
    depth: usize,
}

type Pretty = serde_json::ser::PrettyFormatter<'static>;
type Io = std::io::Result<()>;

impl Rows {
    /// Whether the container being written (or the one just opened) is on one line.
    fn inline(&self) -> bool {
        self.depth > 2
    }

    /// Opens a container with `bracket`, or as `pretty` does at the upper levels.
    fn open<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        bracket: &[u8],
        pretty: fn(&mut Pretty, &mut W) -> Io,
    ) -> Io {
        self.depth += 1;
        if self.inline() {
            w.write_all(bracket)
        } else {
            pretty(&mut self.pretty, w)
        }
    }

    /// Closes a container with `bracket`, or as `pretty` does at the upper levels.
    fn close<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        bracket: &[u8],
        pretty: fn(&mut Pretty, &mut W) -> Io,
    ) -> Io {
        let inline = self.inline();
        self.depth -= 1;
        if inline {
            w.write_all(bracket)
        } else {
            pretty(&mut self.pretty, w)
        }
    }

    /// Before an element or a key: `, ` between them on one line.
    fn before<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
        pretty: fn(&mut Pretty, &mut W, bool) -> Io,
    ) -> Io {
        match self.inline() {
            true => w.write_all(if first { b"" } else { b", " }),
            false => pretty(&mut self.pretty, w, first),
        }
    }

    /// After an element or a value: nothing on one line.
    fn after<W: ?Sized + Write>(&mut self, w: &mut W, pretty: fn(&mut Pretty, &mut W) -> Io) -> Io {
        if self.inline() {
            Ok(())
        } else {
            pretty(&mut self.pretty, w)
        }
    }
}

impl Formatter for Rows {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> Io {
        self.open(w, b"[", Pretty::begin_array)
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> Io {
        self.close(w, b"]", Pretty::end_array)
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> Io {
        self.before(w, first, Pretty::begin_array_value)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> Io {
        self.after(w, Pretty::end_array_value)
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> Io {
        self.open(w, b"{", Pretty::begin_object)
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> Io {
        self.close(w, b"}", Pretty::end_object)
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> Io {
        self.before(w, first, Pretty::begin_object_key)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> Io {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> Io {
        self.after(w, Pretty::end_object_value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::{Method, decompose, haar_unitary};
    use photonflow_optics::rng::Rng;

    /// `layout.json` (one line per MZI) and the CSV table give back every phase to the bit:
    /// the JSON through `Layout::load`, the CSV through Rust's own parser.
    #[test]
    fn phases_read_back_to_the_bit_from_json_and_csv() {
        let n = 24;
        let mesh = decompose(&haar_unitary(n, &mut Rng::new(3)), Method::Clements, 1e-9).unwrap();
        let layout = Layout::new(&mesh, Convention::Photonflow, "clements", 0.0, 0.0, "test");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("layout.json");
        layout.save(&path).unwrap();
        // One line per MZI, each a JSON object of its own.
        let text = std::fs::read_to_string(&path).unwrap();
        let rows: Vec<&str> = text.lines().filter(|l| l.contains("\"column\"")).collect();
        assert_eq!(rows.len(), layout.mzis.len());
        for (row, z) in rows.iter().zip(&layout.mzis) {
            let v: serde_json::Value =
                serde_json::from_str(row.trim().trim_end_matches(',')).unwrap();
            assert_eq!(v["mode"], z.mode);
            assert_eq!(v["theta"].as_f64().unwrap().to_bits(), z.theta.to_bits());
        }
        let back = Layout::load(&path).unwrap();
        let bits = |l: &Layout| -> Vec<u64> {
            let phases = l.mzis.iter().flat_map(|z| [z.theta, z.phi]);
            phases
                .chain(l.output_phases.iter().copied())
                .map(f64::to_bits)
                .collect()
        };
        assert_eq!(bits(&back), bits(&layout));

        let csv = layout.csv(Heaters {
            vpi: Some(4.36),
            ppi: Some(0.025),
        });
        let mut read = Vec::new();
        for row in csv
            .lines()
            .filter(|l| l.starts_with("mzi,") || l.starts_with("output,"))
        {
            let f: Vec<&str> = row.split(',').collect();
            let cols: &[usize] = if f[0] == "mzi" { &[4, 5] } else { &[5] };
            read.extend(cols.iter().map(|&c| f[c].parse::<f64>().unwrap().to_bits()));
            // Volts and milliwatts of the same heaters (θ, φ; empty where there is none).
            assert_eq!(f.len(), 10, "{row}");
            for (rad, volts, mw) in [(4, 6, 8), (5, 7, 9)] {
                if f[rad].is_empty() {
                    assert!(f[volts].is_empty() && f[mw].is_empty(), "{row}");
                    continue;
                }
                let phase: f64 = f[rad].parse().unwrap();
                let v: f64 = f[volts].parse().unwrap();
                let p: f64 = f[mw].parse().unwrap();
                assert!((v - 4.36 * (phase / PI).sqrt()).abs() < 1e-8, "{row}");
                assert!((p - 25.0 * phase / PI).abs() < 1e-8, "{row}");
            }
        }
        assert_eq!(read, bits(&layout));
        // The total is every heater's power: θ ∈ [0, π] and φ ∈ [0, 2π) average π/2 and π.
        let total = layout.heater_power(0.025);
        let mean = total / layout.mzis.len() as f64;
        assert!((0.01..0.06).contains(&mean), "{total} W, {mean} W per MZI");
        let by_rows: f64 = (csv.lines())
            .filter(|l| !l.starts_with('#') && !l.starts_with("element"))
            .flat_map(|l| l.split(',').skip(8).map(str::to_owned).collect::<Vec<_>>())
            .filter(|c| !c.is_empty())
            .map(|c| c.parse::<f64>().unwrap())
            .sum();
        assert!(
            (by_rows / 1e3 - total).abs() < 1e-9 * total.max(1.0),
            "{by_rows} mW {total} W"
        );
    }

    /// `load` refuses a layout whose columns disagree with the order light meets its elements
    /// (the GDS would draw another mesh than `simulate` multiplies out), whose counts disagree
    /// with its lists, or whose SVD block does not fit; it accepts any order that keeps every
    /// mode's, and that order implements the same matrix.
    #[test]
    fn layouts_whose_columns_or_counts_disagree_with_their_elements_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("layout.json");
        let load = |l: &Layout| {
            l.save(&path).unwrap();
            Layout::load(&path)
        };
        let mesh = decompose(&haar_unitary(8, &mut Rng::new(5)), Method::Clements, 1e-9).unwrap();
        let good = Layout::new(&mesh, Convention::Photonflow, "clements", 0.0, 0.0, "test");
        let (m, info) = crate::mesh::decompose_svd(
            &crate::mesh::CMatrix::random(5, 3, &mut Rng::new(6)),
            Method::Clements,
        )
        .unwrap();
        let mut svd = Layout::new(&m, Convention::Photonflow, "svd", 0.0, 0.0, "test");
        svd.svd = Some(info);
        assert_eq!(load(&good).unwrap(), good);
        assert_eq!(load(&svd).unwrap(), svd);

        // By column, then from the bottom mode up: another order, the same on every mode.
        let mut sorted = good.clone();
        sorted.mzis.sort_by_key(|z| (z.column, usize::MAX - z.mode));
        assert_ne!(sorted.mzis, good.mzis);
        let back = load(&sorted).unwrap();
        assert!(back.mesh().matrix().relative_error(&good.mesh().matrix()) < 1e-14);

        // The first MZI moved behind an MZI of the next column that shares one of its modes:
        // multiplied in that order it is another matrix, drawn by columns the same one.
        let mut swapped = good.clone();
        let z = swapped.mzis[0];
        let j = (swapped.mzis.iter())
            .position(|y| y.column == z.column + 1 && y.mode.abs_diff(z.mode) == 1)
            .unwrap();
        swapped.mzis.swap(0, j);
        assert!(
            swapped
                .mesh()
                .matrix()
                .relative_error(&good.mesh().matrix())
                > 0.01
        );

        let mut counted = good.clone();
        counted.mzi_count += 1;
        let mut deep = good.clone();
        deep.depth -= 1;
        let mut block = svd.clone();
        block.svd.as_mut().unwrap().rows = svd.n + 1;
        let mut split = svd.clone();
        split.attenuators[2].column += 1;
        let mut early = svd.clone();
        early.attenuators.iter_mut().for_each(|a| a.column = 0);
        // Numbers at the end of the range (a JSON file may hold them) do not wrap around.
        let mut far_mode = good.clone();
        far_mode.mzis[3].mode = usize::MAX;
        let mut far_column = good.clone();
        far_column.mzis[27].column = usize::MAX;
        for (layout, needle) in [
            (swapped, "MZI 0 (column 1, modes"),
            (counted, "mzi_count 29"),
            (deep, "depth 7"),
            (block, "svd block is 6×3"),
            (split, "attenuator 2"),
            (early, "does not stand in a later column"),
            (far_mode, "MZI 3 (column 2, modes 18446744073709551615"),
            (far_column, "stands in no column a mesh can have"),
        ] {
            let e = load(&layout).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }
}
