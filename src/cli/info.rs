//! `photonflow info`: what this build can do.

use serde_json::json;

/// Arguments of `photonflow info`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let simd = simd_features();
    let threads = rayon::current_num_threads();
    let crates = ["photonflow-optics", "photonflow-d2nn"];
    let backends = [
        "cpu: rustfft + rayon (propagation)",
        "burn flex + autodiff (training ops)",
    ];
    if args.json {
        let info = json!({
            "version": env!("CARGO_PKG_VERSION"),
            "crates": crates,
            "backends": backends,
            "fft_simd": simd,
            "threads": threads,
            "allocator": "mimalloc",
            "methods": photonflow_optics::Method::ALL.iter().map(|m| m.name()).collect::<Vec<_>>(),
        });
        println!("{info}");
    } else {
        println!("photonflow {}", env!("CARGO_PKG_VERSION"));
        println!("crates:    {}", crates.join(", "));
        println!("backends:  {}", backends.join("; "));
        println!(
            "fft simd:  {}",
            if simd.is_empty() {
                "none (scalar)".into()
            } else {
                simd.join(", ")
            }
        );
        println!("threads:   {threads}");
        println!("allocator: mimalloc");
    }
    Ok(())
}

/// SIMD instruction sets rustfft can use on this CPU (it picks them at run time).
fn simd_features() -> Vec<&'static str> {
    #[allow(unused_mut)]
    let mut out = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx") && std::is_x86_feature_detected!("fma") {
            out.push("avx+fma");
        }
        if std::is_x86_feature_detected!("sse4.1") {
            out.push("sse4.1");
        }
    }
    #[cfg(target_arch = "aarch64")]
    out.push("neon");
    out
}
