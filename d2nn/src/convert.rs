//! Conversions between [`photonflow_optics`] values and burn tensors.

use burn::tensor::{Device, Tensor, TensorData};
use num_complex::Complex;
use photonflow_optics::error::{OpticsError, Result};
use photonflow_optics::{Detector, Field, Grid};

/// A batch of fields as an `f32` tensor `[B, Ny, Nx, 2]` (real, imaginary) on `device`.
pub fn field_to_tensor(field: &Field<f32>, device: &Device) -> Tensor<4> {
    let g = field.grid();
    let values: &[f32] = bytemuck::cast_slice(field.data());
    Tensor::from_data(
        TensorData::new(values.to_vec(), [field.batch(), g.ny, g.nx, 2]),
        device,
    )
}

/// A tensor `[B, Ny, Nx, 2]` as a batch of fields on `grid` at vacuum wavelength `wavelength`
/// (e.g. a plan's output grid after [`crate::propagate`]). Waits for the tensor's values.
///
/// Errors when the tensor's shape is not `[B, grid.ny, grid.nx, 2]`, it does not hold `f32`, or
/// the wavelength is not positive.
pub fn tensor_to_field(tensor: Tensor<4>, grid: Grid, wavelength: f64) -> Result<Field<f32>> {
    let [b, ny, nx, two] = tensor.dims();
    if (ny, nx, two) != (grid.ny, grid.nx, 2) {
        return Err(OpticsError::Shape(format!(
            "tensor [{b}, {ny}, {nx}, {two}] is not a batch of fields [B, {}, {}, 2]",
            grid.ny, grid.nx
        )));
    }
    let values = tensor
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| OpticsError::Shape(format!("tensor values are not f32: {e:?}")))?;
    let samples: &[Complex<f32>] = bytemuck::cast_slice(&values);
    Field::from_vec(samples.to_vec(), grid, wavelength)
}

/// The pixel weights of a detector's regions as a tensor `[R, Ny, Nx]` on `device`, for
/// [`crate::region_energies`]. (Multiply the energies by the grid's cell area `dx·dy` to get
/// the values of [`Detector::energies`].)
pub fn detector_weights(detector: &Detector, device: &Device) -> Tensor<3> {
    let g = detector.grid();
    Tensor::from_data(
        TensorData::new(detector.weights().to_vec(), [detector.len(), g.ny, g.nx]),
        device,
    )
}
