//! `photonflow rig serve`, and the rig options of `photonflow infer`.

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
    Calibration, Description, Readout, RemoteRig, Rig, RigConfig, ServeOptions, SimRig, SlmInput,
    calibrate, serve,
};
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
}

impl RigArgs {
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
    let calibration = match &args.calibration {
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
    };
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

/// The rig `args` name, for `system`.
pub fn open(args: &RigArgs, system: &OpticalSystem) -> anyhow::Result<Box<dyn Rig>> {
    let spec = args.rig.as_deref().unwrap_or("sim");
    anyhow::ensure!(
        (1..=MAX_IMAGES as usize).contains(&args.frames),
        "--frames {}: give 1 to {MAX_IMAGES} frames to average per image",
        args.frames
    );
    if spec == "sim" {
        let config = rig_config(args.rig_config.as_deref())?;
        return Ok(Box::new(
            SimRig::new(system, config).context("building the simulated rig")?,
        ));
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

/// Runs `photonflow rig`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        RigCommand::Config => {
            print!("{}", RigConfig::default().to_toml());
            Ok(())
        }
        RigCommand::Serve(args) => run_serve(args),
        RigCommand::Calibrate(args) => run_calibrate(args),
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
    let description = rig.describe()?;
    let input = SlmInput::new(&model.system, &description, args.rig.lut()?.as_ref())?;
    let (ix, iy) = (model.system.input.nx, model.system.input.ny);
    let refs: Vec<ImageRef> = (0..test.len()).map(|i| test.image_ref(i)).collect();
    let plane = detector_planes(&model.optics, &model.masks, &refs);
    let displays: Vec<Vec<u16>> = refs
        .iter()
        .map(|r| input.display(&r.resized(iy, ix)))
        .collect();
    let black = description
        .black_level_or(args.rig.black_level)
        .context("--black-level")?;
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
    use std::io::Write;
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
