//! `seaport`: run a hub, register services, query and watch them.
//!
//! Parses the command line into plain data ([`args`]), then runs one subcommand
//! ([`cmd`]); everything printed on stdout goes through [`output`]. Errors end up as one
//! line on stderr, `seaport: <what failed>: <why>`, and exit status 1.

mod args;
mod child;
mod cmd;
mod keys;
mod output;
mod signals;

use std::io::IsTerminal;
use std::process::ExitCode;

use structopt::StructOpt;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let args = args::Args::from_iter(args::preprocess(std::env::args_os()));
    init_logging(args.verbose);
    match async_std::task::block_on(cmd::run(args.command)) {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`seaport watch ... | head -1`) is not a failure.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seaport: {}", error_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr: warnings by default, `-v` info, `-vv` debug, `-vvv` trace;
/// without `-v`, `RUST_LOG` decides.
fn init_logging(verbose: u8) {
    let filter = match verbose {
        0 => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        1 => EnvFilter::new("info"),
        2 => EnvFilter::new("debug"),
        _ => EnvFilter::new("trace"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

/// The error chain on one line, joined by `": "`, skipping a cause whose text the
/// message before it already includes (many errors print their source themselves).
fn error_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_join_the_chain_without_repeats() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "address in use");
        let inner = anyhow::Error::new(io).context("cannot listen on 0.0.0.0:1: address in use");
        let e = inner.context("starting the hub");
        assert_eq!(error_line(&e), "starting the hub: cannot listen on 0.0.0.0:1: address in use");
        assert_eq!(error_line(&anyhow::anyhow!("two\nlines")), "two lines");
    }
}
