//! The `tether` binary: parses arguments, runs one command, maps the outcome to an exit code.
//! Everything else lives in the library; `cli` holds one module per command.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let printer = cli::printer::Printer::new();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            printer.error(&anyhow::Error::new(error).context("cannot start the async runtime"));
            return cli::Exit::Error.into();
        }
    };
    let status = runtime.block_on(async {
        // Signals are listened for before the command starts, so that none is missed; every
        // one that ends a run cleans up the same way.
        let signalled = cli::interrupt::any_signal();
        tokio::pin!(signalled);
        tokio::select! {
            biased;
            signal = &mut signalled => {
                cli::interrupt::clean_up(&printer, signal).await;
                printer.status(&format!("\ninterrupted ({}): every step is safe to repeat, so run the command again to finish", signal.name()));
                cli::Exit::Interrupted(signal)
            }
            result = cli::run(args, &printer) => match result {
                Ok(status) => status,
                Err(error) if cli::printer::is_broken_pipe(&error) => cli::Exit::Success,
                Err(error) => {
                    printer.error(&error);
                    cli::Exit::Error
                }
            },
        }
    });
    // Do not wait for in-flight requests of an interrupted run.
    runtime.shutdown_background();
    status.into()
}
