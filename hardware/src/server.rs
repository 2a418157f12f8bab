//! A rig on the network: [`serve`] answers slmsuite's remote-hardware requests
//! ([`crate::wire`]) for any [`Rig`], so that slmsuite's `RemoteSLM` and `RemoteCamera`, or
//! photonflow's [`crate::RemoteRig`], drive it.
//!
//! The SLM takes `_set_phase_hw` (its integer display levels) and `flush`; the camera takes
//! `_get_image_hw`, `_get_images_hw`, `_set_exposure_hw`, `_get_exposure_hw`, `flush`, and
//! the window and binning commands (its window is the whole plane, its binning 1 × 1); both
//! take `pickle` (their metadata) and the server takes `ping`. Anything else is refused with
//! slmsuite's messages. The protocol has no authentication: bind to loopback (the default of
//! `photonflow rig serve`) unless the network is trusted. Connections are served one at a
//! time, each with a timeout, and messages are limited in size ([`crate::wire::MAX_LINE`]).

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{HardwareError, Result};
use crate::rig::{Description, Rig};
use crate::wire::{decode_array, encode_array, receive, send};

/// Frames one `_get_images_hw` may ask for.
pub const MAX_IMAGES: u64 = 1024;

/// How [`serve`] names its devices and how long it waits.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The SLM's name in requests.
    pub slm: String,
    /// The camera's name in requests.
    pub camera: String,
    /// How long a client may take to send its request, and the reply to be taken.
    pub timeout: Duration,
    /// Wavelength reported in the SLM's metadata, metres (slmsuite's `wav_um`).
    pub wavelength_m: Option<f64>,
    /// Stop after this many requests (`None`: until `stop` is set).
    pub requests: Option<u64>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            slm: "slm".into(),
            camera: "camera".into(),
            timeout: Duration::from_secs(5),
            wavelength_m: None,
            requests: None,
        }
    }
}

/// Serves `rig` on `listener` until `stop` is set or `options.requests` were answered;
/// `log` hears of every request and of every connection that failed. Returns the number of
/// requests answered.
pub fn serve(
    rig: &mut dyn Rig,
    listener: &TcpListener,
    options: &ServeOptions,
    stop: &AtomicBool,
    mut log: impl FnMut(&str),
) -> Result<u64> {
    let io = |action: &str, source| HardwareError::Io {
        action: action.to_string(),
        source,
    };
    listener
        .set_nonblocking(true)
        .map_err(|e| io("setting up the listener", e))?;
    let mut answered = 0u64;
    while !stop.load(Ordering::Relaxed) && options.requests.is_none_or(|n| answered < n) {
        let (mut stream, peer) = match listener.accept() {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(e) => return Err(io("accepting a connection", e)),
        };
        let served = stream
            .set_nonblocking(false)
            .and_then(|()| stream.set_write_timeout(Some(options.timeout)))
            .map_err(|e| e.to_string())
            .and_then(|()| {
                // A request that cannot be read is answered with why, as slmsuite does.
                let (ok, value) = match receive(&stream, options.timeout) {
                    Ok(request) => {
                        let (ok, value, what) = answer(rig, options, &request);
                        log(&format!(
                            "{peer}: {what}: {}",
                            if ok { "ok" } else { "refused" }
                        ));
                        (ok, value)
                    }
                    Err(e) => (false, json!(format!("the request: {e}"))),
                };
                if !ok {
                    log(&format!("{peer}:   {}", value.as_str().unwrap_or_default()));
                }
                send(&mut stream, &json!([ok, value])).map_err(|e| e.to_string())
            });
        if let Err(e) = served {
            log(&format!("{peer}: {e}"));
        }
        answered += 1;
    }
    Ok(answered)
}

/// The reply `(ok, value)` to one request, and what it was for the log.
fn answer(rig: &mut dyn Rig, options: &ServeOptions, request: &Value) -> (bool, Value, String) {
    let name = request.get("name").and_then(Value::as_str);
    let Some(command) = request.get("command").and_then(Value::as_str) else {
        return (false, json!("No command provided."), "no command".into());
    };
    let what = format!("{}.{command}", name.unwrap_or("server"));
    if command == "ping" {
        let kinds = json!({ options.slm.as_str(): "slm", options.camera.as_str(): "camera" });
        return (true, kinds, what);
    }
    let is_slm = name == Some(options.slm.as_str());
    if !is_slm && name != Some(options.camera.as_str()) {
        let why = format!(
            "Did not recognize hardware '{}'. Options: ['{}', '{}'].",
            name.unwrap_or("None"),
            options.slm,
            options.camera
        );
        return (false, json!(why), what);
    }
    let kwargs = request.get("kwargs").cloned().unwrap_or(json!({}));
    let result = match (is_slm, command) {
        (_, "pickle") => rig
            .describe()
            .map(|d| metadata(&d, is_slm, options))
            .map_err(|e| e.to_string()),
        (_, "flush") => Ok(Value::Null),
        (true, "_set_phase_hw") => set_display(rig, &kwargs),
        (false, "_get_image_hw") => frames(rig, 1),
        (false, "_get_images_hw") => match kwargs.get("image_count").and_then(Value::as_u64) {
            Some(n @ 1..=MAX_IMAGES) => frames(rig, n as usize),
            _ => Err(format!(
                "image_count must be a whole number from 1 to {MAX_IMAGES}"
            )),
        },
        (false, "_set_exposure_hw") => match kwargs.get("exposure_s").and_then(Value::as_f64) {
            Some(s) => rig
                .set_exposure(s)
                .map(|()| Value::Null)
                .map_err(|e| e.to_string()),
            None => Err("exposure_s must be a number of seconds".into()),
        },
        (false, "_get_binning_hw") => Ok(json!([1, 1])),
        (false, "_get_woi_hw") => rig
            .describe()
            .map(|d| json!([0, d.camera.cols, 0, d.camera.rows]))
            .map_err(|e| e.to_string()),
        (false, "_set_binning_hw") => match kwargs.get("binning") {
            Some(b) if *b == json!(1) || *b == json!([1, 1]) => Ok(Value::Null),
            _ => Err("this camera bins 1 × 1 only: its pixels are the detector plane's".into()),
        },
        (false, "_set_woi_hw") => rig.describe().map_err(|e| e.to_string()).and_then(|d| {
            let full = json!([0, d.camera.cols, 0, d.camera.rows]);
            if kwargs.get("woi") == Some(&full) {
                Ok(Value::Null)
            } else {
                Err(format!(
                    "this camera's window is the whole detector plane, {full} (x, width, y, \
                     height)"
                ))
            }
        }),
        (false, "_get_exposure_hw") => rig
            .describe()
            .map(|d| json!(d.exposure_s))
            .map_err(|e| e.to_string()),
        _ => {
            return (false, json!(format!("{what} not present.")), what);
        }
    };
    match result {
        Ok(v) => (true, v, what),
        Err(e) => (false, json!(e), what),
    }
}

fn set_display(rig: &mut dyn Rig, kwargs: &Value) -> std::result::Result<Value, String> {
    let display = kwargs
        .get("display")
        .ok_or("_set_phase_hw needs display (the SLM's levels)")?;
    let array = decode_array(display)?;
    let d = rig.describe().map_err(|e| e.to_string())?;
    if array.shape != [d.slm.rows, d.slm.cols] {
        return Err(format!(
            "display of shape {:?}; the SLM's is [{}, {}]",
            array.shape, d.slm.rows, d.slm.cols
        ));
    }
    rig.display(&array.values).map_err(|e| e.to_string())?;
    Ok(Value::Null)
}

fn frames(rig: &mut dyn Rig, count: usize) -> std::result::Result<Value, String> {
    let frames = rig.capture(count).map_err(|e| e.to_string())?;
    let (rows, cols, bits) = frames
        .first()
        .map(|f| (f.rows, f.cols, f.bits))
        .ok_or("the camera gave no frame")?;
    let values: Vec<u16> = frames
        .iter()
        .flat_map(|f| f.pixels.iter().copied())
        .collect();
    let shape: Vec<usize> = if count == 1 {
        vec![rows, cols]
    } else {
        vec![count, rows, cols]
    };
    Ok(encode_array(&shape, &values, bits <= 8))
}

/// A device's `pickle` reply: the attributes slmsuite's remote clients read.
fn metadata(d: &Description, slm: bool, options: &ServeOptions) -> Value {
    let device = if slm { &d.slm } else { &d.camera };
    let pitch_um = device.pitch_m.map(|p| json!([p * 1e6, p * 1e6]));
    let mut meta = json!({
        "__class__": if slm { "photonflow.SimulatedSlm" } else { "photonflow.SimulatedCamera" },
        "name": if slm { &options.slm } else { &options.camera },
        "shape": [device.rows, device.cols],
        "bitdepth": device.bits,
        "bitresolution": 1u64 << device.bits,
        "pitch_um": pitch_um,
    });
    if slm {
        let wav_um = options.wavelength_m.map(|w| w * 1e6);
        meta["wav_um"] = json!(wav_um);
        meta["wav_design_um"] = json!(wav_um);
        meta["settle_time_s"] = json!(0.0);
    } else {
        meta["exposure_s"] = json!(d.exposure_s);
        meta["exposure_bounds_s"] = json!([0.0, 3600.0]);
        meta["woi"] = json!([0, device.cols, 0, device.rows]);
        meta["binning"] = json!([1, 1]);
        meta["_software_woi"] = json!(false);
        meta["_software_binning"] = json!(false);
    }
    json!({
        "__version__": concat!("photonflow ", env!("CARGO_PKG_VERSION")),
        "__meta__": meta,
    })
}
