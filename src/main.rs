//! The `photonflow` command-line tool: a thin layer over the library crates.

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Output piped into a reader that stops early (`photonflow … | head`) ends the program
    // quietly, as for other Unix tools, instead of failing a print.
    #[cfg(unix)]
    // SAFETY: restores the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
