//! A lab's rig behind slmsuite's network protocol ([`crate::wire`]): an SLM and a camera
//! served by slmsuite's `Server` (or by `photonflow rig serve`).
//!
//! [`RemoteRig::connect`] pings the server, checks that it serves an SLM and a camera under
//! the names given, and reads their shapes and bit depths from their `pickle` metadata. The rig
//! then sends levels with `_set_phase_hw` (the SLM's integer display values, as slmsuite's own
//! client does after its phase-to-gray conversion) and takes frames with `_get_image_hw` and
//! `_get_images_hw`. Every request has a timeout; nothing is retried.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{HardwareError, Result};
use crate::rig::{Description, Device, Frame, Rig, check_bits};
use crate::wire::{Array, decode_array, decode_floats, encode_array, receive, send};

/// A rig reached over the network; see the [module docs](self).
#[derive(Debug)]
pub struct RemoteRig {
    address: SocketAddr,
    slm: String,
    camera: String,
    timeout: Duration,
    description: Description,
}

impl RemoteRig {
    /// Connects to the server at `address` (`host:port`) serving the SLM `slm` and the camera
    /// `camera`; each request may take `timeout` (a frame's exposure and an SLM's settling
    /// included).
    pub fn connect(address: &str, slm: &str, camera: &str, timeout: Duration) -> Result<Self> {
        let remote = |why: String| HardwareError::Remote {
            address: address.to_string(),
            why,
        };
        let resolved = address
            .to_socket_addrs()
            .map_err(|e| remote(format!("cannot resolve the address ({e}); give host:port")))?
            .next()
            .ok_or_else(|| remote("the address resolves to nothing".into()))?;
        let mut rig = Self {
            address: resolved,
            slm: slm.to_string(),
            camera: camera.to_string(),
            timeout,
            description: Description {
                name: String::new(),
                slm: Device {
                    rows: 0,
                    cols: 0,
                    bits: 8,
                    pitch_m: None,
                },
                camera: Device {
                    rows: 0,
                    cols: 0,
                    bits: 8,
                    pitch_m: None,
                },
                exposure_s: 0.0,
                black_level: None,
                noise: None,
            },
        };
        let kinds = rig.request(None, "ping", json!({}))?;
        for (name, kind) in [(slm, "slm"), (camera, "camera")] {
            if kinds.get(name).and_then(Value::as_str) != Some(kind) {
                return Err(rig.error(format!(
                    "it serves no {kind} named '{name}' (it serves {kinds}); name the devices \
                     with --rig-slm and --rig-camera"
                )));
            }
        }
        let slm_meta = rig.metadata(slm)?;
        let camera_meta = rig.metadata(camera)?;
        let device = |meta: &Value, what: &str| -> Result<Device> {
            let shape: Vec<usize> = meta
                .get("shape")
                .and_then(Value::as_array)
                .and_then(|s| s.iter().map(|d| d.as_u64().map(|d| d as usize)).collect())
                .filter(|s: &Vec<usize>| s.len() == 2 && s[0] > 0 && s[1] > 0)
                .ok_or_else(|| rig.error(format!("the {what}'s metadata has no shape")))?;
            let bits = meta
                .get("bitdepth")
                .and_then(Value::as_u64)
                .ok_or_else(|| rig.error(format!("the {what}'s metadata has no bitdepth")))?
                as u32;
            check_bits(&format!("the {what}'s bitdepth"), bits)?;
            // A number, a list, or (slmsuite 0.5) a float64 array of (x, y).
            let pitch_um = meta.get("pitch_um").and_then(|p| match p {
                Value::Number(n) => n.as_f64(),
                Value::Array(a) => a.first().and_then(Value::as_f64),
                Value::Object(_) => decode_floats(p).ok().and_then(|v| v.first().copied()),
                _ => None,
            });
            Ok(Device {
                rows: shape[0],
                cols: shape[1],
                bits,
                pitch_m: pitch_um.map(|p| p * 1e-6),
            })
        };
        rig.description = Description {
            name: format!("{slm} and {camera} at {address}"),
            slm: device(&slm_meta, "SLM")?,
            camera: device(&camera_meta, "camera")?,
            exposure_s: camera_meta
                .get("exposure_s")
                .and_then(Value::as_f64)
                .unwrap_or(f64::NAN),
            black_level: None,
            noise: None,
        };
        Ok(rig)
    }

    fn error(&self, why: String) -> HardwareError {
        HardwareError::Remote {
            address: self.address.to_string(),
            why,
        }
    }

    /// The `__meta__` of a device's `pickle`.
    fn metadata(&self, name: &str) -> Result<Value> {
        let reply = self.request(
            Some(name),
            "pickle",
            json!({"attributes": false, "metadata": true}),
        )?;
        Ok(reply.get("__meta__").cloned().unwrap_or(reply))
    }

    /// Sends one request and returns its reply's value.
    fn request(&self, name: Option<&str>, command: &str, kwargs: Value) -> Result<Value> {
        let connect = self.timeout.min(Duration::from_secs(10));
        let mut stream = TcpStream::connect_timeout(&self.address, connect)
            .map_err(|e| self.error(format!("cannot connect ({e}); is the server running?")))?;
        stream
            .set_write_timeout(Some(self.timeout))
            .map_err(|e| self.error(e.to_string()))?;
        let message = json!({"name": name, "command": command, "args": [], "kwargs": kwargs});
        send(&mut stream, &message).map_err(|e| self.error(format!("sending {command}: {e}")))?;
        let reply = receive(&stream, self.timeout)
            .map_err(|e| self.error(format!("the reply to {command}: {e}")))?;
        match reply.as_array().map(Vec::as_slice) {
            Some([Value::Bool(true), value]) => Ok(value.clone()),
            Some([Value::Bool(false), why]) => Err(self.error(format!(
                "{command} refused: {}",
                why.as_str().map_or_else(|| why.to_string(), str::to_string)
            ))),
            _ => Err(self.error(format!(
                "the reply to {command} is not [ok, value]: {}",
                truncated(&reply)
            ))),
        }
    }

    fn frames(&self, array: Array, count: usize) -> Result<Vec<Frame>> {
        let cam = self.description.camera;
        let expected: &[usize] = if count == 1 && array.shape.len() == 2 {
            &[cam.rows, cam.cols]
        } else {
            &[count, cam.rows, cam.cols]
        };
        if array.shape != expected {
            return Err(self.error(format!(
                "frames of shape {:?} came; the camera's are {expected:?}",
                array.shape
            )));
        }
        Ok(array
            .values
            .chunks_exact(cam.rows * cam.cols)
            .map(|p| Frame {
                rows: cam.rows,
                cols: cam.cols,
                bits: cam.bits,
                pixels: p.to_vec(),
            })
            .collect())
    }
}

fn truncated(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 200 {
        format!("{}…", &s[..s.floor_char_boundary(200)])
    } else {
        s
    }
}

impl Rig for RemoteRig {
    fn describe(&mut self) -> Result<Description> {
        Ok(self.description.clone())
    }

    fn display(&mut self, levels: &[u16]) -> Result<()> {
        let slm = self.description.slm;
        if levels.len() != slm.rows * slm.cols {
            return Err(crate::error::invalid(
                "SLM display",
                format!(
                    "{} levels given; the SLM has {} × {} pixels",
                    levels.len(),
                    slm.rows,
                    slm.cols
                ),
            ));
        }
        let display = encode_array(&[slm.rows, slm.cols], levels, slm.bits <= 8);
        self.request(
            Some(&self.slm),
            "_set_phase_hw",
            json!({ "display": display }),
        )?;
        Ok(())
    }

    fn capture(&mut self, count: usize) -> Result<Vec<Frame>> {
        let timeout = self.timeout.as_secs_f64();
        let reply = if count == 1 {
            self.request(
                Some(&self.camera),
                "_get_image_hw",
                json!({ "timeout_s": timeout }),
            )?
        } else {
            self.request(
                Some(&self.camera),
                "_get_images_hw",
                json!({ "image_count": count, "timeout_s": timeout }),
            )?
        };
        let array = decode_array(&reply).map_err(|e| self.error(format!("a frame: {e}")))?;
        self.frames(array, count)
    }

    fn set_exposure(&mut self, seconds: f64) -> Result<()> {
        self.request(
            Some(&self.camera),
            "_set_exposure_hw",
            json!({ "exposure_s": seconds }),
        )?;
        self.description.exposure_s = seconds;
        Ok(())
    }
}
