//! # photonflow-hardware
//!
//! Optical rigs: a trained diffractive system run on a bench, simulated or real.
//!
//! * [`Rig`]: an input SLM and a camera at the detector plane, as a program drives them.
//! * [`SimRig`]: the model's own optics with the imperfections of real parts ([`RigConfig`]:
//!   SLM bit depth, crosstalk and contrast; layer misalignment, fabrication error and loss;
//!   camera shot, dark and read noise, gain, bit depth and saturation).
//! * [`Readout`]: images to SLM levels, and camera frames to classes with confidences.
//! * [`calibrate()`]: where a camera's pixels lie on the detector plane, measured through the
//!   trained layers by comparing the light the model predicts with the light the camera sees.
//! * [`photon_transfer`]: a camera's black level, gain and read noise, measured through the
//!   rig (EMVA 1288's photon transfer), for a lab camera that does not describe its noise.
//! * [`measure_slm`]: a phase SLM's gray level → phase (and amplitude) response, measured on
//!   the rig through the trained layers, as a lookup table.
//! * [`identify()`]: where each layer sits on the bench (lateral and axial offsets), by fitting
//!   the bench's digital twin to its camera frames.
//! * [`RemoteRig`] and [`serve`]: rigs over slmsuite's network protocol ([`wire`]), so that
//!   photonflow drives a lab's slmsuite server and slmsuite drives a photonflow rig.
//!
//! Every random draw comes from the configuration's seed, so a simulated rig is reproduced
//! exactly.

pub mod calibrate;
pub mod camera;
pub mod config;
pub mod error;
mod file;
mod fit;
pub mod geometry;
pub mod identify;
pub mod readout;
pub mod remote;
pub mod response;
pub mod rig;
pub mod server;
pub mod sim;
pub mod transfer;
pub mod wire;

pub use calibrate::{Calibration, calibrate};
pub use config::{Offset, RigConfig};
pub use error::{HardwareError, Result};
pub use geometry::Affine;
pub use identify::{Identification, IdentifyOptions, identify};
pub use readout::{Readout, RigPrediction, SlmInput};
pub use remote::RemoteRig;
pub use response::{SlmResponse, measure_slm};
pub use rig::{CameraNoise, Description, Device, Frame, Rig};
pub use server::{ServeOptions, serve};
pub use sim::{Placement, SimRig};
pub use transfer::{CameraMeasurement, auto_exposures, photon_transfer};
