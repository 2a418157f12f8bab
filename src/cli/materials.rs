//! `photonflow materials`: the relief materials photonflow knows (or one from a table), with
//! their index and extinction at chosen wavelengths — what `--material` and a network's
//! `[modulation] material` take.

use photonflow_compiler::material;
use photonflow_optics::material::{MATERIAL_PRESETS, Material, MaterialEntry};
use photonflow_optics::units::format_length;
use serde_json::json;

/// The Fraunhofer F, d and C lines (m): the Abbe number's wavelengths, and the default rows.
const FDC: [f64; 3] = [486.1327e-9, 587.5618e-9, 656.2725e-9];

/// Arguments of `photonflow materials`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// One material: a built-in name, a table FILE.toml or FILE.toml:NAME, or measured n and
    /// k in FILE.csv (refractiveindex.info's export, or columns wavelength_nm, n, k). Default:
    /// every built-in one.
    #[arg(long, value_name = "NAME|FILE.toml[:NAME]|FILE.csv")]
    material: Option<String>,
    /// Wavelengths to give n and κ at, comma-separated (`--at 532nm,1064nm`). Default: the F, d
    /// and C lines (486.1, 587.6, 656.3 nm) where a material is known there, else the
    /// wavelength its values are quoted at.
    #[arg(long = "at", value_name = "λ,…", value_parser = super::positive_length, value_delimiter = ',')]
    at: Vec<f64>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let entries: Vec<MaterialEntry> = match &args.material {
        Some(m) => vec![material::resolve(m).map_err(|e| anyhow::anyhow!("--material: {e}"))?],
        None => MATERIAL_PRESETS.clone(),
    };
    let reports: Vec<serde_json::Value> = entries.iter().map(|e| report(e, &args.at)).collect();
    if args.json {
        println!("{}", json!({ "materials": reports }));
        return Ok(());
    }
    for (entry, r) in entries.iter().zip(&reports) {
        println!("{}: {}", entry.name, entry.describe());
        if let Some(source) = &entry.source {
            println!("  source: {source}");
        }
        for row in r["at"].as_array().into_iter().flatten() {
            let l = format_length(row["wavelength_m"].as_f64().unwrap_or(f64::NAN));
            match (row["n"].as_f64(), row["kappa"].as_f64()) {
                (Some(n), Some(k)) => println!("  λ = {l:>8}: n = {n:.6}, κ = {k}"),
                _ => println!(
                    "  λ = {l:>8}: {}",
                    row["error"].as_str().unwrap_or("not known")
                ),
            }
        }
        if let Some(v) = r["abbe_number"].as_f64() {
            println!("  Abbe number V_d = {v:.2}");
        }
    }
    Ok(())
}

/// One material's rows (`n`, `κ` or why not, at each wavelength) and Abbe number, as JSON.
fn report(entry: &MaterialEntry, at: &[f64]) -> serde_json::Value {
    // the material at the F, d and C lines, where it is known at all three
    let fdc: Option<Vec<Material>> = FDC.iter().map(|&l| entry.at(l).ok()).collect();
    let wavelengths: Vec<f64> = if !at.is_empty() {
        at.to_vec()
    } else if fdc.is_some() {
        FDC.to_vec()
    } else {
        entry.wavelength.map(|w| w.m()).into_iter().collect()
    };
    let rows: Vec<serde_json::Value> = wavelengths
        .iter()
        .map(|&l| match entry.at(l) {
            Ok(m) => json!({ "wavelength_m": l, "n": m.n, "kappa": m.kappa }),
            Err(e) => json!({ "wavelength_m": l, "error": e.into_problem() }),
        })
        .collect();
    let abbe = fdc
        .filter(|_| entry.dispersion.is_some())
        .map(|m| (m[1].n - 1.0) / (m[0].n - m[2].n));
    json!({
        "name": entry.name,
        "model": entry.dispersion.as_ref().map_or("constant", |d| d.name()),
        "range_m": entry.dispersion.as_ref().and_then(|d| d.range_m()).map(|(a, b)| [a, b]),
        "entry": entry,
        "at": rows,
        "abbe_number": abbe,
    })
}
