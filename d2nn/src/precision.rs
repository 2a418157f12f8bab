//! The two precisions of fields and plans: `f32` for training, `f64` for tight gradient checks.
//!
//! A field tensor `[B, Ny, Nx, 2]` holds `f32` or `f64` (its burn [`DType`]); a plan is a
//! [`Plan<f32>`] or a [`Plan<f64>`] of the optics crate. The operations take either, and a
//! field must meet a plan (and masks a field) of its own precision.

use std::sync::Arc;

use burn::tensor::{DType, Element};
use photonflow_optics::propagate::{Plan, WindowPlan};
use photonflow_optics::{Propagator, Real};

/// A planned propagation of either precision, shared between the forward and backward passes.
#[derive(Debug, Clone)]
pub enum SharedPropagator {
    /// For `f32` fields.
    F32(Arc<dyn Propagator<f32>>),
    /// For `f64` fields.
    F64(Arc<dyn Propagator<f64>>),
}

impl SharedPropagator {
    /// The element type of the fields this plan runs on.
    pub fn dtype(&self) -> DType {
        match self {
            SharedPropagator::F32(_) => DType::F32,
            SharedPropagator::F64(_) => DType::F64,
        }
    }
}

/// A planned propagation onto an output window of either precision, shared between the
/// forward and backward passes.
#[derive(Debug, Clone)]
pub enum SharedWindow {
    /// For `f32` fields.
    F32(Arc<WindowPlan<f32>>),
    /// For `f64` fields.
    F64(Arc<WindowPlan<f64>>),
}

impl SharedWindow {
    /// The element type of the fields this plan runs on.
    pub fn dtype(&self) -> DType {
        match self {
            SharedWindow::F32(_) => DType::F32,
            SharedWindow::F64(_) => DType::F64,
        }
    }
}

/// An element type of fields: `f32` or `f64`.
pub trait Precision: Real + Element + bytemuck::Pod {
    /// The burn data type of tensors holding this element.
    const DTYPE: DType;

    /// The plan's propagator, shared.
    fn share(plan: &Plan<Self>) -> SharedPropagator;

    /// The propagator of `plan` when it is of this precision.
    fn propagator(plan: &SharedPropagator) -> Option<&dyn Propagator<Self>>;

    /// The window plan, shared.
    fn share_window(plan: &Arc<WindowPlan<Self>>) -> SharedWindow;

    /// The window plan of `plan` when it is of this precision.
    fn window(plan: &SharedWindow) -> Option<&WindowPlan<Self>>;
}

impl Precision for f32 {
    const DTYPE: DType = DType::F32;

    fn share(plan: &Plan<f32>) -> SharedPropagator {
        SharedPropagator::F32(plan.propagator.clone())
    }

    fn propagator(plan: &SharedPropagator) -> Option<&dyn Propagator<f32>> {
        match plan {
            SharedPropagator::F32(p) => Some(&**p),
            SharedPropagator::F64(_) => None,
        }
    }

    fn share_window(plan: &Arc<WindowPlan<f32>>) -> SharedWindow {
        SharedWindow::F32(plan.clone())
    }

    fn window(plan: &SharedWindow) -> Option<&WindowPlan<f32>> {
        match plan {
            SharedWindow::F32(p) => Some(p),
            SharedWindow::F64(_) => None,
        }
    }
}

impl Precision for f64 {
    const DTYPE: DType = DType::F64;

    fn share(plan: &Plan<f64>) -> SharedPropagator {
        SharedPropagator::F64(plan.propagator.clone())
    }

    fn propagator(plan: &SharedPropagator) -> Option<&dyn Propagator<f64>> {
        match plan {
            SharedPropagator::F64(p) => Some(&**p),
            SharedPropagator::F32(_) => None,
        }
    }

    fn share_window(plan: &Arc<WindowPlan<f64>>) -> SharedWindow {
        SharedWindow::F64(plan.clone())
    }

    fn window(plan: &SharedWindow) -> Option<&WindowPlan<f64>> {
        match plan {
            SharedWindow::F64(p) => Some(p),
            SharedWindow::F32(_) => None,
        }
    }
}

/// Panics unless a tensor of `op` (`what`: "field", "phase", …) holds `expected` (the
/// precision of the plan or of the field it goes with).
pub(crate) fn expect_dtype(op: &str, what: &str, dtype: DType, expected: DType) {
    assert!(
        dtype == expected,
        "{op}: the {what} tensor holds {dtype:?} where {expected:?} is expected; fields, masks \
         and plans must share one precision (f32 or f64)"
    );
}
