//! A trained model loaded for evaluation and inference.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use photonflow_optics::OpticalSystem;
use photonflow_optics::system::{SourceSpec, system_folder};

use crate::config::Config;
use crate::error::Result;
use crate::network::{Mask, Optics};

/// An exported [`OpticalSystem`] ready to run: its optics planned on the CPU and its masks as
/// tensors.
#[derive(Debug)]
pub struct Model {
    /// The system as read from disk.
    pub system: OpticalSystem,
    /// Its optics (plans, detector) on the Flex CPU backend.
    pub optics: Optics,
    /// Its masks.
    pub masks: Vec<Mask>,
    /// The dataset the run was trained on, when the path is a run folder whose config names one.
    pub dataset: Option<String>,
    /// The folder the system was read from.
    pub path: PathBuf,
}

impl Model {
    /// Loads a model from a run folder (`RUN/`, reading `RUN/model/system.json`), a system
    /// folder, or the path of a `system.json`.
    pub fn load(path: &Path) -> Result<Self> {
        let folder = system_folder(path);
        let system = OpticalSystem::load(&folder)?;
        let config = path.join("config.toml");
        let dataset = if config.is_file() {
            Config::from_file(&config)?.dataset
        } else {
            None
        };
        let optics = Optics::new(&system, &Device::flex())?;
        let masks = optics.masks_of(&system);
        Ok(Self {
            system,
            optics,
            masks,
            dataset,
            path: folder,
        })
    }

    /// The same model under another light (`None`: a laser at its design wavelength; see
    /// [`OpticalSystem::source`]): its optics planned anew for that source's lines and
    /// directions.
    pub fn with_source(mut self, source: Option<SourceSpec>) -> Result<Self> {
        self.system.source = source;
        self.system.validate()?;
        self.optics = Optics::new(&self.system, &Device::flex())?;
        self.masks = self.optics.masks_of(&self.system);
        Ok(self)
    }
}
