//! The `photonflow` command-line tool: a thin layer over the library crates.

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = photonflow::cli::Cli::parse();
    match photonflow::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut shown = e.to_string();
            eprintln!("error: {shown}");
            // A cause that an earlier message already quotes is not repeated.
            for cause in e.chain().skip(1).map(|c| c.to_string()) {
                if !shown.contains(&cause) {
                    eprintln!("  caused by: {cause}");
                    shown.push('\n');
                    shown.push_str(&cause);
                }
            }
            ExitCode::FAILURE
        }
    }
}
