//! `kubectl-rotate`: parse, run, exit. kubectl finds this binary on PATH for `kubectl rotate`.

#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match kubectl_rotate::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0, usage errors to stderr with 2 (clap's own).
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            kubectl_rotate::output::print_error(
                &mut std::io::stderr(),
                &kubectl_rotate::Error::Runtime(e),
            );
            return ExitCode::from(1);
        }
    };
    ExitCode::from(runtime.block_on(kubectl_rotate::main(cli)))
}
