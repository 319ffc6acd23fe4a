//! The `dkimctl` binary: parse the command line, run it, print any error
//! with its chain of causes, and map the outcome to an exit code.

use clap::Parser;

fn main() {
    let cli = dkimctl::cli::Cli::parse();
    let code = match dkimctl::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("dkimctl: error: {err}");
            let mut cause = err.source();
            while let Some(c) = cause {
                eprintln!("  caused by: {c}");
                cause = c.source();
            }
            2
        }
    };
    std::process::exit(code);
}
