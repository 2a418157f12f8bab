//! Clements' rectangle against Reck's triangle on lossy chips: a Monte Carlo with the library.
//!
//! ```sh
//! cargo run --release --example mesh_loss [-- OUT_DIR]
//! ```
//!
//! Clements et al. (Optica 3, 1460 (2016)) designed the rectangular mesh so that the paths
//! through it meet nearly the same number of MZIs: a loss in every MZI then scales the whole
//! matrix and leaves its shape, while in Reck's triangle the paths meet from 1 to 2N − 3 MZIs
//! and the loss distorts the matrix. This example compiles one Haar-random 16 × 16 unitary
//! into both meshes, runs each on chips whose MZIs lose `L` dB (each MZI its own loss, spread
//! by 20 % of `L`) for `L` from 0.05 to 1 dB, 32 chips per point, and prints and plots the
//! infidelity of the matrix's shape, `1 − |Tr(U†U_chip)| / (‖U‖_F·‖U_chip‖_F)`, with the
//! mean transmission. It writes `OUT_DIR/mesh_loss.png` (default `out/`).

use std::path::PathBuf;

use photonflow::compiler::mesh::chip::Imperfections;
use photonflow::compiler::mesh::trials;
use photonflow::compiler::mesh::{Method, decompose, haar_unitary};
use photonflow::optics::rng::Rng;
use photonflow::plot::{self, LinePlot, Series};

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "out".into()));
    std::fs::create_dir_all(&out)?;
    let n = 16;
    let u = haar_unitary(n, &mut Rng::new(2016));
    let losses = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0];
    let mut curves = Vec::new();
    println!("loss/MZI  method    1 − F (shape)        transmission");
    let methods = [
        ("Clements", "Clements (rectangle)", Method::Clements),
        ("Reck", "Reck (triangle)", Method::Reck),
    ];
    for (name, legend, method) in methods {
        let mesh = decompose(&u, method, 1e-9)?;
        let mut points = Vec::new();
        for &loss_db in &losses {
            let chip = Imperfections {
                loss_db,
                loss_error: 0.2 * loss_db,
                seed: 1,
                ..Imperfections::default()
            };
            let t = trials::run(&mesh, &chip, &u, None, 32, None, || {})?;
            let shape = 1.0 - t.fidelity_normalized.mean;
            println!(
                "{loss_db:>5.2} dB  {name:<8}  {shape:.3e} ± {:.1e}  {:.3} ({:.2} dB)",
                t.fidelity_normalized.std,
                t.transmission.mean,
                -10.0 * t.transmission.mean.log10()
            );
            points.push((loss_db, shape));
        }
        curves.push((legend, points));
    }
    let path = out.join("mesh_loss.png");
    plot::write_line_png(
        &path,
        &LinePlot {
            title: "16 × 16 Haar-random unitary on lossy chips (32 chips per point)",
            x_label: "insertion loss per MZI (dB, ±20 %)",
            y_label: "1 − normalised fidelity",
            series: curves
                .iter()
                .map(|(legend, points)| Series {
                    name: legend,
                    points,
                })
                .collect(),
            log_y: true,
        },
        900,
        560,
    )?;
    println!("wrote {}", path.display());
    Ok(())
}
