//! `photonflow rig serve`, and the rig options of `photonflow infer`.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use photonflow_d2nn::eval::{ImageRef, detector_planes};
use photonflow_d2nn::model::Model;
use photonflow_hardware::server::MAX_IMAGES;
use photonflow_hardware::wire::DEFAULT_PORT;
use photonflow_hardware::{
    Affine, Calibration, CameraMeasurement, Description, IdentifyOptions, Placement, Readout,
    RemoteRig, Rig, RigConfig, ServeOptions, SimRig, SlmInput, auto_exposures, calibrate, identify,
    measure_slm, photon_transfer, serve,
};
use photonflow_optics::io::write_atomic;
use photonflow_optics::lut::Lut;
use photonflow_optics::system::{OpticalSystem, system_folder};
use photonflow_optics::units::format_length;

/// Arguments of `photonflow rig`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: RigCommand,
}

#[derive(Debug, clap::Subcommand)]
enum RigCommand {
    /// Serve a simulated rig of a trained model over slmsuite's network protocol, for
    /// `photonflow infer --rig HOST:PORT` or slmsuite's RemoteSLM and RemoteCamera.
    Serve(ServeArgs),
    /// Print the imperfections of the default simulated rig as a TOML file to edit.
    Config,
    /// Measure where a rig's camera pixels lie on the detector plane (pitch, offset, rotation)
    /// through the trained layers, for `infer` and `eval --calibration`.
    Calibrate(CalibrateArgs),
    /// Measure where each layer sits on a rig (lateral and axial offsets) by fitting its
    /// digital twin to camera frames, and write the twin as a rig file.
    Identify(IdentifyArgs),
    /// Measure a rig's camera (black level, gain, read noise) by the photon transfer method,
    /// for `--camera`: single frames then carry a certainty on a lab's rig too.
    Camera(CameraArgs),
    /// Measure a phase SLM's gray level → phase (and amplitude) response on the rig, through
    /// the trained layers, as a lookup table for --slm-lut.
    Slm(SlmArgs),
}

/// Arguments of `photonflow rig slm`.
#[derive(Debug, clap::Args)]
struct SlmArgs {
    /// The trained model (phase-encoded input): a run folder (RUN/) or a folder holding
    /// system.json.
    #[arg(long, value_name = "RUN")]
    model: PathBuf,
    /// Measure every Nth level (and the last).
    #[arg(long, value_name = "N", default_value_t = 1)]
    step: u16,
    /// The bench as identified (`rig identify --out`): its layers.offsets place the twin's
    /// layers (default: as designed).
    #[arg(long, value_name = "TWIN.toml")]
    twin: Option<PathBuf>,
    /// Where to write the table (CSV `gray,phase,amplitude`).
    #[arg(long, value_name = "LUT.csv")]
    out: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    rig: RigArgs,
}

/// Arguments of `photonflow rig camera`.
#[derive(Debug, clap::Args)]
struct CameraArgs {
    /// The trained model: a run folder (RUN/) or a folder holding system.json.
    #[arg(long, value_name = "RUN")]
    model: PathBuf,
    /// The pattern's dataset (its first test image is displayed).
    #[command(flatten)]
    test: super::data::TestData,
    /// Exposures to measure at, seconds, comma-separated (default: one that fills the
    /// brightest pixels to about 60 % of the camera's range, and 1/2, 1/4 and 1/8 of it).
    #[arg(long, value_name = "S,S,…", value_delimiter = ',')]
    exposures: Vec<f64>,
    /// Where to write the measurement (JSON).
    #[arg(long, value_name = "CAMERA.json")]
    out: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    rig: RigArgs,
}

/// Arguments of `photonflow rig identify`.
#[derive(Debug, clap::Args)]
struct IdentifyArgs {
    /// The trained model: a run folder (RUN/) or a folder holding system.json.
    #[arg(long, value_name = "RUN")]
    model: PathBuf,
    /// The probes' dataset.
    #[command(flatten)]
    test: super::data::TestData,
    /// Test images displayed as probes (more average the noise down and take longer).
    #[arg(long, value_name = "N", default_value_t = 16)]
    probes: usize,
    /// How far each layer may be off sideways, searched in whole pixels before the fine fit
    /// (a length, rounded to pixels: `0.8mm`, `2px`).
    #[arg(long, value_name = "LENGTH", default_value = "2px")]
    search: String,
    /// How far each layer may be off along the axis, searched in steps of pitch²/λ before the
    /// fine fit (default: 4 steps; 0: the fine fit alone, for offsets well under pitch²/λ).
    #[arg(long, value_name = "LENGTH", value_parser = super::length)]
    axial_range: Option<f64>,
    /// Keep every layer at its designed distance (fit lateral offsets only).
    #[arg(long)]
    no_axial: bool,
    /// Iterations of the fine fit.
    #[arg(long, value_name = "N", default_value_t = 30)]
    iterations: usize,
    /// Layers in place on the bench, from the first: a bench assembled and identified one
    /// layer at a time (default: the rig file's layers.mounted, else all).
    #[arg(long, value_name = "N")]
    mounted: Option<usize>,
    /// Start from the placements of this rig file's layers.offsets: the --out of the
    /// identification before, with one layer fewer mounted.
    #[arg(long, value_name = "TWIN.toml")]
    start: Option<PathBuf>,
    /// Write the bench as identified as a rig file (its layers.offsets set), for `eval --rig
    /// sim --rig-config`.
    #[arg(long, value_name = "TWIN.toml")]
    out: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    rig: RigArgs,
}

/// Arguments of `photonflow rig calibrate`.
#[derive(Debug, clap::Args)]
struct CalibrateArgs {
    /// The trained model: a run folder (RUN/) or a folder holding system.json.
    #[arg(long, value_name = "RUN")]
    model: PathBuf,
    /// The patterns' dataset.
    #[command(flatten)]
    test: super::data::TestData,
    /// Test images displayed as patterns (at least 3; more average the noise down).
    #[arg(long, value_name = "N", default_value_t = 32)]
    patterns: usize,
    /// Where to write the calibration (JSON).
    #[arg(long, value_name = "CALIBRATION.json")]
    out: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    rig: RigArgs,
}

/// Arguments of `photonflow rig serve`.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// The trained model: a run folder (RUN/) or a folder holding system.json.
    #[arg(long, value_name = "RUN")]
    model: PathBuf,
    /// The rig's imperfections (TOML; `photonflow rig config` prints the defaults).
    #[arg(long, value_name = "RIG.toml")]
    rig_config: Option<PathBuf>,
    /// Address to listen on. The protocol has no authentication: keep the default loopback
    /// unless the network is trusted. Port 0 picks a free port (printed).
    #[arg(long, value_name = "HOST:PORT", default_value_t = SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)))]
    bind: SocketAddr,
    /// The SLM's name in requests.
    #[arg(long, value_name = "NAME", default_value = "slm")]
    slm_name: String,
    /// The camera's name in requests.
    #[arg(long, value_name = "NAME", default_value = "camera")]
    camera_name: String,
    /// Stop after this many requests (default: until interrupted).
    #[arg(long, value_name = "N")]
    requests: Option<u64>,
}

/// The rig options of `photonflow infer`.
#[derive(Debug, Clone, clap::Args)]
pub struct RigArgs {
    /// Classify on a rig instead of the ideal model: `sim` (a simulated bench with the
    /// imperfections of real parts, see --rig-config) or HOST:PORT (a lab rig served with
    /// slmsuite's protocol, or `photonflow rig serve`).
    #[arg(long, value_name = "sim|HOST:PORT")]
    pub rig: Option<String>,
    /// The simulated rig's imperfections (TOML; `photonflow rig config` prints the defaults).
    #[arg(long, value_name = "RIG.toml", requires = "rig")]
    pub rig_config: Option<PathBuf>,
    /// Camera frames averaged per image.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "rig")]
    pub frames: usize,
    /// The camera's value for no light, ADU, subtracted before the regions are summed
    /// (default: the simulated rig's own; 0 on a remote rig).
    #[arg(long, value_name = "ADU", requires = "rig")]
    pub black_level: Option<f64>,
    /// A remote rig's SLM name.
    #[arg(long, value_name = "NAME", default_value = "slm")]
    pub rig_slm: String,
    /// A remote rig's camera name.
    #[arg(long, value_name = "NAME", default_value = "camera")]
    pub rig_camera: String,
    /// Seconds a remote rig may take to answer one request (settling and exposure included).
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    pub rig_timeout: f64,
    /// Where the rig's camera pixels lie on the detector plane, as `photonflow rig calibrate`
    /// measured it (needed when the camera does not sample the model's grid).
    #[arg(long, value_name = "CALIBRATION.json", requires = "rig")]
    pub calibration: Option<PathBuf>,
    /// The rig's phase SLM as measured: a lookup table CSV (`gray,phase[,amplitude]`); each
    /// phase is shown with the level nearest to it (default: levels linear over 2π).
    #[arg(long, value_name = "LUT.csv", requires = "rig")]
    pub slm_lut: Option<PathBuf>,
    /// The rig's camera as `photonflow rig camera` measured it: its black level (unless
    /// --black-level) and its noise, from which a single frame's certainty is estimated.
    #[arg(long, value_name = "CAMERA.json", requires = "rig")]
    pub camera: Option<PathBuf>,
}

impl RigArgs {
    /// The black level to subtract from `description`'s camera: `--black-level`, else the
    /// rig's own (or `--camera`'s), else 0.
    fn black(&self, description: &Description) -> anyhow::Result<f64> {
        description
            .black_level_or(self.black_level)
            .context("--black-level")
    }

    /// The table of `--slm-lut`.
    fn lut(&self) -> anyhow::Result<Option<Lut>> {
        self.slm_lut
            .as_deref()
            .map(|p| Lut::read_csv(p).context("--slm-lut"))
            .transpose()
    }
}

/// The readout of `system` on the rig `description` describes, with `args`' black level and
/// calibration.
pub fn readout(
    args: &RigArgs,
    system: &OpticalSystem,
    description: &Description,
) -> anyhow::Result<Readout> {
    let calibration = calibration(args, description)?;
    let lut = args.lut()?;
    Readout::new(
        system,
        description,
        args.black_level,
        calibration.as_ref(),
        lut.as_ref(),
    )
    .with_context(|| format!("--rig {}", args.rig.as_deref().unwrap_or("sim")))
}

/// What `rig` says of itself, with the black level and noise of `--camera` when given.
pub fn described(rig: &mut dyn Rig, args: &RigArgs) -> anyhow::Result<Description> {
    let mut description = rig.describe()?;
    if let Some(path) = &args.camera {
        let m = CameraMeasurement::load(path).context("--camera")?;
        anyhow::ensure!(
            (m.camera_rows, m.camera_cols) == (description.camera.rows, description.camera.cols),
            "--camera {}: measured on a camera of {} × {} pixels; this rig's gives {} × {}: \
             measure it again (photonflow rig camera)",
            path.display(),
            m.camera_rows,
            m.camera_cols,
            description.camera.rows,
            description.camera.cols
        );
        description.black_level = Some(m.black_level);
        description.noise = Some(m.noise());
    }
    Ok(description)
}

/// The camera map of `--calibration`, checked against the camera `description` gives.
fn calibration(args: &RigArgs, description: &Description) -> anyhow::Result<Option<Affine>> {
    Ok(match &args.calibration {
        Some(path) => {
            let c = Calibration::load(path).context("--calibration")?;
            anyhow::ensure!(
                (c.camera_rows, c.camera_cols)
                    == (description.camera.rows, description.camera.cols),
                "--calibration {}: measured on a camera of {} × {} pixels; this rig's gives {} × \
                 {}: calibrate it again",
                path.display(),
                c.camera_rows,
                c.camera_cols,
                description.camera.rows,
                description.camera.cols
            );
            Some(c.map)
        }
        None => None,
    })
}

/// Reads `--rig-config`, or the defaults.
fn rig_config(path: Option<&Path>) -> anyhow::Result<RigConfig> {
    Ok(match path {
        Some(p) => RigConfig::load(p)
            .context("--rig-config: fix the file (see `photonflow rig config`)")?,
        None => RigConfig::default(),
    })
}

/// A system with its masks, from a run folder or a system folder.
fn load_system(path: &Path) -> anyhow::Result<OpticalSystem> {
    OpticalSystem::load(&system_folder(path)).with_context(|| format!("--model {}", path.display()))
}

/// Errors unless `--frames` is in range.
fn check_frames(args: &RigArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=MAX_IMAGES as usize).contains(&args.frames),
        "--frames {}: give 1 to {MAX_IMAGES} frames to average per image",
        args.frames
    );
    Ok(())
}

/// The rig `args` name, for `system`.
pub fn open(args: &RigArgs, system: &OpticalSystem) -> anyhow::Result<Box<dyn Rig>> {
    let spec = args.rig.as_deref().unwrap_or("sim");
    check_frames(args)?;
    if spec == "sim" {
        return open_sim(args, system, rig_config(args.rig_config.as_deref())?);
    }
    anyhow::ensure!(
        args.rig_config.is_none(),
        "--rig-config describes a simulated rig; a remote rig ({spec}) is what it is"
    );
    anyhow::ensure!(
        args.rig_timeout.is_finite() && args.rig_timeout > 0.0 && args.rig_timeout <= 3600.0,
        "--rig-timeout {}: give seconds from 0 to 3600",
        args.rig_timeout
    );
    anyhow::ensure!(
        spec.contains(':'),
        "--rig {spec}: give `sim` or the address of a rig server as HOST:PORT (e.g. \
         127.0.0.1:{DEFAULT_PORT})"
    );
    let timeout = Duration::from_secs_f64(args.rig_timeout);
    Ok(Box::new(
        RemoteRig::connect(spec, &args.rig_slm, &args.rig_camera, timeout)
            .with_context(|| format!("--rig {spec}"))?,
    ))
}

/// The simulated rig of `config` for `system` (`args` checked as [`open`] checks them).
fn open_sim(
    args: &RigArgs,
    system: &OpticalSystem,
    config: RigConfig,
) -> anyhow::Result<Box<dyn Rig>> {
    check_frames(args)?;
    Ok(Box::new(
        SimRig::new(system, config).context("building the simulated rig")?,
    ))
}

/// Runs `photonflow rig`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        RigCommand::Config => {
            print!("{}", RigConfig::default().to_toml());
            Ok(())
        }
        RigCommand::Serve(args) => run_serve(args),
        RigCommand::Calibrate(args) => run_calibrate(args),
        RigCommand::Identify(args) => run_identify(args),
        RigCommand::Camera(args) => run_camera(args),
        RigCommand::Slm(args) => run_slm(args),
    }
}

fn run_calibrate(args: CalibrateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rig.calibration.is_none(),
        "--calibration reads a calibration; this command writes one (--out)"
    );
    anyhow::ensure!(
        args.patterns >= 3,
        "--patterns {}: an affine map needs at least 3",
        args.patterns
    );
    let model = Model::load(&args.model)?;
    let test = args.test.load(&model)?.1.take(args.patterns);
    let mut rig = open(&args.rig, &model.system)?;
    let description = described(rig.as_mut(), &args.rig)?;
    let input = SlmInput::new(&model.system, &description, args.rig.lut()?.as_ref())?;
    let refs: Vec<ImageRef> = (0..test.len()).map(|i| test.image_ref(i)).collect();
    let plane = detector_planes(&model.optics, &model.masks, &refs);
    let displays = show(&input, &model.system, &refs);
    let black = args.rig.black(&description)?;
    let calibration = calibrate(
        rig.as_mut(),
        &displays,
        &plane,
        &model.optics.grid,
        black,
        args.rig.frames,
    )
    .context("calibrating the camera")?;
    calibration
        .save(&args.out)
        .with_context(|| format!("--out {}", args.out.display()))?;
    let (pitch, rotation) = calibration.pitch_and_rotation();
    let centre = calibration.map.inverse()?.apply((
        (description.camera.cols / 2) as f64,
        (description.camera.rows / 2) as f64,
    ));
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "calibration": calibration,
                "pitch_m": pitch,
                "rotation_deg": rotation,
                "centre_m": [centre.0, centre.1],
                "out": args.out.display().to_string(),
            })
        );
        return Ok(());
    }
    println!(
        "camera of {} × {} pixels: pitch {} on the plane, turned {rotation:.3}°, centre at ({}, \
         {}); residual {:.2} % over {} patterns; written to {}",
        description.camera.rows,
        description.camera.cols,
        format_length(pitch),
        format_length(centre.0),
        format_length(centre.1),
        100.0 * calibration.residual,
        calibration.patterns,
        args.out.display()
    );
    Ok(())
}

fn run_identify(args: IdentifyArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.probes >= 1,
        "--probes {}: give at least 1 (16 or more average the noise down)",
        args.probes
    );
    if let Some(range) = args.axial_range {
        anyhow::ensure!(
            range.is_finite() && range >= 0.0,
            "--axial-range {range}: give a length ≥ 0"
        );
        anyhow::ensure!(
            !args.no_axial,
            "--axial-range searches axial offsets, which --no-axial keeps at 0: give one of them"
        );
    }
    anyhow::ensure!(
        (1..=1000).contains(&args.iterations),
        "--iterations {}: give 1 to 1000",
        args.iterations
    );
    let model = Model::load(&args.model)?;
    let system = &model.system;
    let search_px = super::whole_pixels("--search", &args.search, system.pitch_m)?;
    anyhow::ensure!(
        search_px <= 16,
        "--search {}: {search_px} pixels each way is {} twin evaluations per layer and sweep; \
         give at most 16px",
        args.search,
        (2 * search_px + 1).pow(2)
    );
    let test = args.test.load(&model)?.1.take(args.probes);
    let simulated = args.rig.rig.as_deref().unwrap_or("sim") == "sim";
    let lut = args.rig.lut()?;
    // What is known of the bench: a simulated one's rig file (whose mounted layers --mounted
    // sets); of a lab's, its SLM's lookup table and, below, bits. Paths in the file written
    // become absolute, so that it reads from anywhere.
    let mut base = if simulated {
        let mut config = rig_config(args.rig.rig_config.as_deref())?;
        if let (Some(lut), Some(file)) = (&config.slm.lut, &args.rig.rig_config) {
            config.slm.lut = Some(absolute(&file.parent().unwrap_or(Path::new(".")).join(lut)));
        }
        config
    } else {
        let mut config = RigConfig::default();
        config.slm.lut = args.rig.slm_lut.as_deref().map(absolute);
        config.slm.table = lut.clone();
        config
    };
    if let Some(n) = args.mounted {
        anyhow::ensure!(
            (1..=system.layers.len()).contains(&n),
            "--mounted {n}: the system has {} layers; give 1 to {}",
            system.layers.len(),
            system.layers.len()
        );
        base.layers.mounted = Some(n);
    }
    let mut rig: Box<dyn Rig> = if simulated {
        open_sim(&args.rig, system, base.clone())?
    } else {
        open(&args.rig, system)?
    };
    let description = described(rig.as_mut(), &args.rig)?;
    base.slm.bits = description.slm.bits;
    let input = SlmInput::new(system, &description, lut.as_ref())?;
    let refs: Vec<ImageRef> = (0..test.len()).map(|i| test.image_ref(i)).collect();
    let displays = show(&input, system, &refs);
    let black = args.rig.black(&description)?;
    let camera = calibration(&args.rig, &description)?;
    let mounted = base.layers.mounted.unwrap_or(system.layers.len());
    let start = match &args.start {
        Some(path) => {
            let config =
                RigConfig::load(path).with_context(|| format!("--start {}", path.display()))?;
            anyhow::ensure!(
                config.layers.offsets.len() == system.layers.len(),
                "--start {}: its layers.offsets has {} entries; a rig file written by `rig \
                 identify --out` for this model has {}",
                path.display(),
                config.layers.offsets.len(),
                system.layers.len()
            );
            let mut placements = Placement::of(system, &config)?;
            placements.truncate(mounted);
            placements
        }
        None => Vec::new(),
    };
    let options = IdentifyOptions {
        search_px,
        axial_range_m: args
            .axial_range
            .unwrap_or(4.0 * system.pitch_m.powi(2) / system.wavelength_m),
        axial: !args.no_axial,
        iterations: args.iterations,
        start,
    };
    let bar = super::progress_bar(
        args.json,
        0,
        "{spinner} identifying: {msg} [{bar:30}] {pos}/{len} [{elapsed}]",
    );
    let start = std::time::Instant::now();
    let found = identify(
        rig.as_mut(),
        system,
        &base,
        camera.as_ref(),
        &displays,
        black,
        args.rig.frames,
        &options,
        &mut |p| {
            bar.set_length(p.total as u64);
            bar.set_position(p.done as u64);
            bar.set_message(if p.residual.is_finite() {
                format!("{}, residual {:.2} %", p.stage, 100.0 * p.residual)
            } else {
                p.stage.to_string()
            });
        },
    )
    .context("identifying the layers")?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    if found.residual > 0.8 * found.residual_design {
        eprintln!(
            "warning: the twin explains little more of the frames than the design does \
             (residual {:.1} % against {:.1} %): the layers may be further off than --search \
             and --axial-range reach, or too many off at once for the light to tell; mount and \
             identify them one at a time (--mounted 1, then --mounted 2 --start TWIN.toml, …)",
            100.0 * found.residual,
            100.0 * found.residual_design
        );
    }
    if let Some(out) = &args.out {
        let twin = found.twin_config(&base, system.pitch_m, system.layers.len());
        let text = format!(
            "# {} as identified by `photonflow rig identify` ({} probes; residual {:.2} % as \
             designed, {:.2} % as found)\n{}",
            system.name,
            found.probes,
            100.0 * found.residual_design,
            100.0 * found.residual,
            twin.to_toml()
        );
        write_atomic(out, |w| w.write_all(text.as_bytes()))
            .with_context(|| format!("--out {}", out.display()))?;
    }
    let pitch = system.pitch_m;
    if args.json {
        let layers: Vec<_> = system
            .layers
            .iter()
            .zip(&found.layers)
            .map(|(layer, f)| {
                serde_json::json!({
                    "name": layer.name,
                    "x_m": f.placement.dx_px * pitch,
                    "y_m": f.placement.dy_px * pitch,
                    "z_m": f.placement.dz_m,
                    "x_error_m": f.error.dx_px * pitch,
                    "y_error_m": f.error.dy_px * pitch,
                    "z_error_m": f.error.dz_m,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "layers": layers,
                "identification": found,
                "seconds": seconds,
                "out": args.out.as_ref().map(|p| p.display().to_string()),
            })
        );
        return Ok(());
    }
    println!(
        "{} layers identified from {} probes ({} camera values) in {seconds:.1} s: residual \
         {:.2} % with the layers as designed, {:.2} % as found",
        found.layers.len(),
        found.probes,
        found.pixels,
        100.0 * found.residual_design,
        100.0 * found.residual
    );
    if found.layers.len() < system.layers.len() {
        println!(
            "(the first {} of {} layers mounted)",
            found.layers.len(),
            system.layers.len()
        );
    }
    println!("offsets from the design (± standard error; move each layer by the opposite):");
    for (layer, f) in system.layers.iter().zip(&found.layers) {
        let (p, e) = (f.placement, f.error);
        println!(
            "  {:<12} x {} ({:+.3} px ± {:.3}), y {} ({:+.3} px ± {:.3}), z {} ± {}",
            layer.name,
            format_length(p.dx_px * pitch),
            p.dx_px,
            e.dx_px,
            format_length(p.dy_px * pitch),
            p.dy_px,
            e.dy_px,
            format_length(p.dz_m),
            format_length(e.dz_m)
        );
    }
    if let Some(out) = &args.out {
        println!(
            "the bench as identified: {} (run it with `photonflow eval --rig sim --rig-config {}`)",
            out.display(),
            out.display()
        );
    }
    Ok(())
}

fn run_camera(args: CameraArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rig.camera.is_none(),
        "--camera reads a camera measurement; this command writes one (--out)"
    );
    let model = Model::load(&args.model)?;
    let system = &model.system;
    let test = args.test.load(&model)?.1.take(1);
    anyhow::ensure!(test.len() == 1, "the dataset has no test image to display");
    let mut rig = open(&args.rig, system)?;
    let description = rig.describe()?;
    let input = SlmInput::new(system, &description, args.rig.lut()?.as_ref())?;
    let display = show(&input, system, &[test.image_ref(0)]).remove(0);
    let exposures = if args.exposures.is_empty() {
        auto_exposures(rig.as_mut(), &display).context("choosing the exposures")?
    } else {
        args.exposures.clone()
    };
    anyhow::ensure!(
        exposures
            .iter()
            .all(|t| t.is_finite() && *t > 0.0 && *t <= 3600.0),
        "--exposures {exposures:?}: give positive seconds (at most 3600), e.g. \
         0.001,0.002,0.004,0.008"
    );
    let m = photon_transfer(rig.as_mut(), &display, &exposures)
        .context("measuring the camera (--exposures)")?;
    m.save(&args.out)
        .with_context(|| format!("--out {}", args.out.display()))?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({"camera": m, "out": args.out.display().to_string()})
        );
        return Ok(());
    }
    println!(
        "camera of {} × {} pixels: black level {:.2} ADU, gain {:.4} e⁻/ADU, read noise {:.2} \
         e⁻ rms ({} points on the transfer curve, residual {:.1} %); written to {}",
        m.camera_rows,
        m.camera_cols,
        m.black_level,
        m.gain,
        m.read_noise,
        m.points,
        100.0 * m.residual,
        args.out.display()
    );
    Ok(())
}

fn run_slm(args: SlmArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rig.slm_lut.is_none(),
        "--slm-lut gives an SLM's table; this command measures one (--out)"
    );
    anyhow::ensure!(args.step >= 1, "--step 0: give 1 or more");
    let system = load_system(&args.model)?;
    let twin = match &args.twin {
        Some(path) => {
            RigConfig::load(path).with_context(|| format!("--twin {}", path.display()))?
        }
        None => RigConfig::default(),
    };
    let mut rig = open(&args.rig, &system)?;
    let description = described(rig.as_mut(), &args.rig)?;
    let top = description.slm.max_level();
    let mut levels: Vec<u16> = (0..=top).step_by(usize::from(args.step)).collect();
    if levels.last() != Some(&top) {
        levels.push(top);
    }
    let black = args.rig.black(&description)?;
    let camera = calibration(&args.rig, &description)?;
    let response = measure_slm(
        rig.as_mut(),
        &system,
        &twin,
        camera.as_ref(),
        &levels,
        black,
        args.rig.frames,
    )
    .context("measuring the SLM")?;
    write_atomic(&args.out, |w| w.write_all(response.to_csv().as_bytes()))
        .with_context(|| format!("--out {}", args.out.display()))?;
    let span = response.phase.last().copied().unwrap_or(0.0);
    let worst = response.residual.iter().copied().fold(0.0, f64::max);
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "response": response,
                "span_rad": span,
                "out": args.out.display().to_string(),
            })
        );
        return Ok(());
    }
    println!(
        "{} levels measured: phase spans {span:.4} rad ({:.3} waves) from level 0 to {top}; \
         frame residuals up to {:.1} %; written to {} (use it with --slm-lut)",
        response.levels.len(),
        span / std::f64::consts::TAU,
        100.0 * worst,
        args.out.display()
    );
    Ok(())
}

/// The SLM levels that show `images`, each resampled onto `system`'s input area first.
fn show(input: &SlmInput, system: &OpticalSystem, images: &[ImageRef]) -> Vec<Vec<u16>> {
    let (ix, iy) = (system.input.nx, system.input.ny);
    images
        .iter()
        .map(|r| input.display(&r.resized(iy, ix)))
        .collect()
}

/// `path` made absolute (against the working folder), as it is.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let system = load_system(&args.model)?;
    let config = rig_config(args.rig_config.as_deref())?;
    let mut rig = SimRig::new(&system, config).context("building the simulated rig")?;
    let listener = TcpListener::bind(args.bind)
        .with_context(|| format!("--bind {}: cannot listen there", args.bind))?;
    let address = listener.local_addr().context("reading the bound address")?;
    if !address.ip().is_loopback() {
        eprintln!(
            "warning: listening on {address}, beyond this machine; slmsuite's protocol has no \
             authentication, so anyone who can reach it can drive the rig"
        );
    }
    println!(
        "serving a simulated rig of {} on {address}: SLM '{}' ({} × {}), camera '{}' ({} × {})",
        system.name,
        args.slm_name,
        system.input.ny,
        system.input.nx,
        args.camera_name,
        system.ny,
        system.nx
    );
    std::io::stdout().flush().ok();
    let options = ServeOptions {
        slm: args.slm_name,
        camera: args.camera_name,
        wavelength_m: Some(system.wavelength_m),
        requests: args.requests,
        ..ServeOptions::default()
    };
    let stop = AtomicBool::new(false);
    let answered = serve(&mut rig, &listener, &options, &stop, |line| {
        eprintln!("{line}")
    })?;
    println!("answered {answered} requests");
    Ok(())
}
