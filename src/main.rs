//! The `harp` binary: parse HAProxy-style flags, then check, print the version, or run.

use harp::cli::{self, CliError};

fn main() -> anyhow::Result<()> {
    let opts = match cli::parse_args(std::env::args().collect()) {
        Ok(o) => o,
        Err(CliError::Help(text)) => {
            print!("{text}");
            return Ok(());
        }
        Err(CliError::Usage(text)) => {
            eprint!("{text}");
            std::process::exit(1);
        }
    };
    if opts.version > 0 {
        print!("{}", cli::version_text(opts.version > 1));
        return Ok(());
    }
    let filter = if opts.debug {
        "harp=debug"
    } else {
        "harp=warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HARP_LOG")
                .unwrap_or_else(|_| filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if opts.check_only {
        std::process::exit(cli::check_main(&opts));
    }
    let Some(config) = cli::load_config(&opts) else {
        std::process::exit(1);
    };
    let settings = harp::app::RunSettings {
        pidfile: opts.pidfile.clone(),
        quiet: opts.quiet || config.global.quiet,
        debug: opts.debug,
        soft_stop_pids: opts.soft_stop_pids.clone(),
        hard_stop_pids: opts.hard_stop_pids.clone(),
    };
    harp::app::run(config, settings)?;
    Ok(())
}
