//! Helpers shared by the integration tests: random test data and the finite-difference
//! gradient check of rust-stack.md §2.2.

use burn::tensor::{DType, Device, Tensor, TensorData};

pub use photonflow_d2nn::rng::Rng;

/// Vectors of random test data.
pub trait Draws {
    /// `n` standard normal values.
    fn normals(&mut self, n: usize) -> Vec<f32>;
    /// `n` values uniform in `[lo, hi)`.
    fn uniforms(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f32>;
}

impl Draws for Rng {
    fn normals(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.normal() as f32).collect()
    }

    fn uniforms(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f32> {
        (0..n).map(|_| self.range(lo, hi) as f32).collect()
    }
}

/// A differentiable function of flat inputs with a flat output.
pub type Op<'a> = &'a dyn Fn(Vec<Tensor<1>>) -> Tensor<1>;

pub fn tensor1(v: &[f32], device: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
}

/// A flat tensor of `dtype` holding `v` (rounded for f32).
pub fn tensor_as(v: &[f64], dtype: DType, device: &Device) -> Tensor<1> {
    let data = TensorData::new(v.to_vec(), [v.len()]).convert_dtype(dtype);
    Tensor::from_data(data, (device, dtype))
}

pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().expect("f32 tensor")
}

/// The values of a tensor of any float dtype, as f64.
pub fn values64<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .expect("float tensor")
}

/// max |a − b| / max |b|.
pub fn rel_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    num / b.iter().map(|y| y.abs()).fold(0.0, f64::max)
}

/// `L = Σ w·out²` evaluated on the plain CPU device, summed in f64.
fn host_loss(op: Op, inputs: &[Vec<f64>], dtype: DType, w: &[f64]) -> f64 {
    let device = Device::flex();
    let out = values64(op(inputs
        .iter()
        .map(|v| tensor_as(v, dtype, &device))
        .collect()));
    assert_eq!(out.len(), w.len());
    out.iter().zip(w).map(|(o, w)| w * o * o).sum()
}

/// Gradients of `L = Σ w·out²` with respect to every input, by burn's autodiff.
fn autodiff_grads(op: Op, inputs: &[Vec<f64>], dtype: DType, w: &[f64]) -> Vec<Vec<f64>> {
    let device = Device::flex().autodiff();
    let leaves: Vec<Tensor<1>> = inputs
        .iter()
        .map(|v| tensor_as(v, dtype, &device).require_grad())
        .collect();
    let out = op(leaves.clone());
    let loss = (out.square() * tensor_as(w, dtype, &device)).sum();
    let grads = loss.backward();
    leaves
        .iter()
        .map(|t| values64(t.grad(&grads).expect("input has a gradient")))
        .collect()
}

/// Worst errors of one input's gradient.
#[derive(Debug)]
pub struct GradReport {
    /// max over sampled elements of |fd − ad| / max(|fd|, |ad|, rms(ad)).
    pub elements: f64,
    /// |fd − ad| / max(|fd|, |ad|, 0.1·‖ad‖·‖v‖/√n) for a random direction v.
    pub direction: f64,
}

/// Checks the autodiff gradient of `L = Σ w·op(inputs)²` (fixed random `w`) against central
/// differences with step `eps`, with tensors of `dtype`, for each input: `n_elements` random
/// elements and one random direction. Returns one report per input.
pub fn check_gradients(
    name: &str,
    op: Op,
    inputs: &[Vec<f32>],
    dtype: DType,
    eps: f64,
    n_elements: usize,
    rng: &mut Rng,
) -> Vec<GradReport> {
    let inputs: Vec<Vec<f64>> = inputs
        .iter()
        .map(|v| v.iter().map(|&x| x as f64).collect())
        .collect();
    let device = Device::flex();
    let out_len = values64(op(inputs
        .iter()
        .map(|v| tensor_as(v, dtype, &device))
        .collect()))
    .len();
    let w: Vec<f64> = (0..out_len).map(|_| 2.0 * rng.uniform() - 1.0).collect();
    let ad = autodiff_grads(op, &inputs, dtype, &w);
    let fd = |which: usize, dir: &dyn Fn(usize) -> f64| -> f64 {
        let shifted = |sign: f64| -> f64 {
            let mut x = inputs.clone();
            for (i, v) in x[which].iter_mut().enumerate() {
                *v += sign * eps * dir(i);
            }
            host_loss(op, &x, dtype, &w)
        };
        (shifted(1.0) - shifted(-1.0)) / (2.0 * eps)
    };
    let mut reports = Vec::new();
    for (k, g) in ad.iter().enumerate() {
        let n = g.len();
        let rms = (g.iter().map(|x| x * x).sum::<f64>() / n as f64).sqrt();
        let mut worst = 0f64;
        for _ in 0..n_elements {
            let j = (rng.next_u64() % n as u64) as usize;
            let f = fd(k, &|i| if i == j { 1.0 } else { 0.0 });
            let a = g[j];
            worst = worst.max((f - a).abs() / f.abs().max(a.abs()).max(rms));
        }
        let v: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let f = fd(k, &|i| v[i]);
        let a: f64 = g.iter().zip(&v).map(|(g, v)| g * v).sum();
        let scale = 0.1 * rms * v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let direction = (f - a).abs() / f.abs().max(a.abs()).max(scale);
        println!(
            "{name} ({dtype:?}): input {k}: worst element error {worst:.2e}, direction error \
             {direction:.2e} (fd {f:.6e}, ad {a:.6e})"
        );
        reports.push(GradReport {
            elements: worst,
            direction,
        });
    }
    reports
}
