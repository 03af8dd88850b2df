//! HAProxy's command-line flags, so operators' habits and unit files keep working:
//! `-f <file|dir>` (repeatable), `-c`, `-v`/`-vv`, `-d`, `-q`, `-D`, `-W`, `-Ws`, `-p <pidfile>`,
//! `-sf <pid>...`, `-st <pid>...`.
//!
//! HAProxy uses multi-letter flags behind a single dash (`-sf`, `-st`, `-Ws`), which clap would
//! read as bundles of one-letter flags; a small pre-pass renames them to long options first.

use crate::config;
use clap::{ArgAction, Parser};
use std::path::PathBuf;

/// What the command line asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `-f` paths in order (files, or directories whose `*.cfg` files are loaded in lexical order).
    pub config_paths: Vec<PathBuf>,
    /// `-c`: check the configuration and exit.
    pub check_only: bool,
    /// `-v` = 1, `-vv` = 2: print the version (and build facts) and exit.
    pub version: u8,
    /// `-d`: stay in the foreground with debug logs.
    pub debug: bool,
    /// `-q`: quiet (no warnings, no "Configuration file is valid").
    pub quiet: bool,
    /// `-D`: daemonize.
    pub daemon: bool,
    /// `-W`: master-worker mode.
    pub master_worker: bool,
    /// `-Ws`: master-worker mode with systemd notify support.
    pub systemd: bool,
    /// `-p <pidfile>`.
    pub pidfile: Option<PathBuf>,
    /// `-L <name>`: this process's name in `peers` sections.
    pub localpeer: Option<String>,
    /// `-sf <pid>...`: ask these (old) processes to finish gracefully once we listen.
    pub soft_stop_pids: Vec<u32>,
    /// `-st <pid>...`: terminate these (old) processes once we listen.
    pub hard_stop_pids: Vec<u32>,
}

/// A command line that cannot be used; the text is ready to print.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Wrong flags or values; contains the usage text.
    #[error("{0}")]
    Usage(String),
    /// `-h`/`--help` was asked: print the text on stdout and exit 0.
    #[error("{0}")]
    Help(String),
}

#[derive(Parser, Debug)]
#[command(
    name = "harp",
    disable_version_flag = true,
    about = "harp: an HAProxy-compatible TCP load balancer",
    override_usage = "harp [-c] [-v|-vv] [-d] [-q] [-D] [-W|-Ws] [-L <name>] [-p <pidfile>] -f <cfgfile|cfgdir>... [-sf|-st <pid>...]"
)]
struct Args {
    /// Configuration file or directory (its *.cfg files, in lexical order); repeatable.
    #[arg(short = 'f', value_name = "cfgfile|cfgdir", action = ArgAction::Append)]
    files: Vec<PathBuf>,
    /// Check the configuration and exit (0 = valid).
    #[arg(short = 'c')]
    check: bool,
    /// Print the version (-vv: and build facts).
    #[arg(short = 'v', action = ArgAction::Count)]
    version: u8,
    /// Foreground, debug logs.
    #[arg(short = 'd')]
    debug: bool,
    /// Quiet mode.
    #[arg(short = 'q')]
    quiet: bool,
    /// Daemon mode.
    #[arg(short = 'D')]
    daemon: bool,
    /// Master-worker mode.
    #[arg(short = 'W')]
    master_worker: bool,
    /// Master-worker mode with systemd notify (-Ws).
    #[arg(long = "Ws")]
    systemd: bool,
    /// This process's name in `peers` sections (default: the host name).
    #[arg(short = 'L', value_name = "name")]
    localpeer: Option<String>,
    /// Write the process id to this file.
    #[arg(short = 'p', value_name = "pidfile")]
    pidfile: Option<PathBuf>,
    /// Soft-stop these processes once listening (-sf).
    #[arg(long = "sf", value_name = "pid", num_args = 1.., value_parser = clap::value_parser!(u32))]
    soft_stop: Vec<u32>,
    /// Terminate these processes once listening (-st).
    #[arg(long = "st", value_name = "pid", num_args = 1.., value_parser = clap::value_parser!(u32))]
    hard_stop: Vec<u32>,
}

/// Renames HAProxy's single-dash multi-letter flags to the long options clap knows.
fn prepass(args: Vec<String>) -> Vec<String> {
    args.into_iter()
        .map(|a| match a.as_str() {
            "-sf" => "--sf".to_string(),
            "-st" => "--st".to_string(),
            "-Ws" => "--Ws".to_string(),
            _ => a,
        })
        .collect()
}

/// Parses `args` (including the program name in `args[0]`, as `std::env::args()` gives).
pub fn parse_args(args: Vec<String>) -> Result<Options, CliError> {
    let a = Args::try_parse_from(prepass(args)).map_err(|e| match e.kind() {
        clap::error::ErrorKind::DisplayHelp => CliError::Help(e.to_string()),
        _ => CliError::Usage(e.to_string()),
    })?;
    let opts = Options {
        config_paths: a.files,
        check_only: a.check,
        version: a.version.min(2),
        debug: a.debug,
        quiet: a.quiet,
        daemon: a.daemon,
        master_worker: a.master_worker || a.systemd,
        systemd: a.systemd,
        pidfile: a.pidfile,
        localpeer: a.localpeer,
        soft_stop_pids: a.soft_stop,
        hard_stop_pids: a.hard_stop,
    };
    if opts.version == 0 && opts.config_paths.is_empty() {
        return Err(CliError::Usage(
            "[ALERT] No configuration file specified (use -f <cfgfile|cfgdir>).\nUsage: harp [-c] [-v|-vv] [-d] [-q] [-D] [-W|-Ws] [-L <name>] [-p <pidfile>] -f <cfgfile|cfgdir>... [-sf|-st <pid>...]\n"
                .into(),
        ));
    }
    Ok(opts)
}

/// `-v` (and with `verbose`, `-vv`) text. `-vv` adds what this build and kernel can do, the way
/// `haproxy -vv` reports "Built with Lua version : ..." which scripts grep for.
pub fn version_text(verbose: bool) -> String {
    let mut s = format!(
        "harp version {} - an HAProxy-compatible TCP load balancer\n",
        env!("CARGO_PKG_VERSION")
    );
    if verbose {
        s.push_str(&format!("Running on: {}\n", uname()));
        s.push_str(&format!("Built with Lua version : {}\n", lua_version()));
        s.push_str(&format!("io_uring : {}\n", probe(io_uring_works())));
        s.push_str(&format!("splice : {}\n", probe(splice_works())));
    }
    s
}

fn probe(r: Result<(), String>) -> String {
    match r {
        Ok(()) => "available".into(),
        Err(e) => format!("unavailable ({e})"),
    }
}

fn uname() -> String {
    let u = rustix::system::uname();
    format!(
        "{} {} {}",
        u.sysname().to_string_lossy(),
        u.release().to_string_lossy(),
        u.machine().to_string_lossy()
    )
}

/// The embedded Lua's `_VERSION` (e.g. `Lua 5.4`).
fn lua_version() -> String {
    let lua = mlua::Lua::new();
    lua.globals()
        .get::<String>("_VERSION")
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

/// Whether this kernel lets us create an io_uring (seccomp, old kernels and sysctls may not).
fn io_uring_works() -> Result<(), String> {
    io_uring::IoUring::new(2)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Whether splice(2) between two pipes works here.
fn splice_works() -> Result<(), String> {
    use rustix::pipe::{pipe, splice, SpliceFlags};
    let (r1, w1) = pipe().map_err(|e| e.to_string())?;
    let (_r2, w2) = pipe().map_err(|e| e.to_string())?;
    rustix::io::write(&w1, b"x").map_err(|e| e.to_string())?;
    match splice(&r1, None, &w2, None, 1, SpliceFlags::NONBLOCK) {
        Ok(1) => Ok(()),
        Ok(n) => Err(format!("moved {n} bytes instead of 1")),
        Err(e) => Err(e.to_string()),
    }
}

/// Loads the `-f` configuration as `harp -c` and `harp -f` both need it: prints warnings
/// (unless `-q`) and every error on stderr in HAProxy's form. `None` = refused (exit 1).
pub fn load_config(opts: &Options) -> Option<config::Config> {
    let loaded = config::load(&opts.config_paths).and_then(|mut cfg| {
        let local = opts
            .localpeer
            .clone()
            .or_else(|| cfg.global.localpeer.clone())
            .or_else(crate::sys::hostname)
            .unwrap_or_default();
        let dup = cfg.set_local_peer(&local);
        if !dup.is_empty() {
            return Err(config::ConfigErrors {
                errors: dup
                    .into_iter()
                    .map(|(at, message)| config::ConfigError::at(&at, message))
                    .collect(),
                warnings: std::mem::take(&mut cfg.warnings),
            });
        }
        let missing = missing_lua_files(&cfg);
        if missing.is_empty() {
            // Syntax errors in Lua scripts fail the check, as they fail HAProxy's start-up.
            match crate::lua::check(&cfg) {
                Ok(()) => Ok(cfg),
                Err(errs) => Err(config::ConfigErrors {
                    errors: errs
                        .into_iter()
                        .map(|message| config::ConfigError::File { message })
                        .collect(),
                    warnings: cfg.warnings,
                }),
            }
        } else {
            Err(config::ConfigErrors {
                errors: missing,
                warnings: cfg.warnings,
            })
        }
    });
    match loaded {
        Ok(cfg) => {
            if !opts.quiet && !cfg.global.quiet {
                for w in &cfg.warnings {
                    eprintln!("{w}");
                }
            }
            if cfg.global.zero_warning && !cfg.warnings.is_empty() {
                eprintln!(
                    "[ALERT] config : Some warnings were found and 'zero-warning' is set. Aborting."
                );
                return None;
            }
            Some(cfg)
        }
        Err(errs) => {
            if !opts.quiet {
                for w in &errs.warnings {
                    eprintln!("{w}");
                }
            }
            for e in &errs.errors {
                eprintln!("{e}");
            }
            eprintln!("[ALERT] config : Fatal errors found in configuration.");
            None
        }
    }
}

/// `harp -c`: [`load_config`], then `Configuration file is valid` on stdout (unless `-q`).
/// Returns the process exit code (0 valid, 1 not).
pub fn check_main(opts: &Options) -> i32 {
    match load_config(opts) {
        Some(_) => {
            if !opts.quiet {
                println!("Configuration file is valid");
            }
            0
        }
        None => 1,
    }
}

/// An I/O error's text without Rust's " (os error N)" suffix, as `strerror()` prints it.
fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(pos) => s[..pos].to_string(),
        None => s,
    }
}

/// HAProxy loads Lua scripts during `-c`, so a missing script fails the check; harp's check
/// does not run them but does refuse a script it could not open.
fn missing_lua_files(cfg: &config::Config) -> Vec<config::ConfigError> {
    cfg.global
        .lua_loads
        .iter()
        .filter_map(|l| {
            let kw = if l.per_thread {
                "lua-load-per-thread"
            } else {
                "lua-load"
            };
            std::fs::File::open(&l.file).err().map(|e| {
                config::ConfigError::at(
                    &l.location,
                    format!(
                        "{kw}: failed to load Lua script '{}': cannot open {}: {}",
                        l.file.display(),
                        l.file.display(),
                        strerror(&e)
                    ),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Options, CliError> {
        parse_args(
            std::iter::once("harp")
                .chain(s.split_whitespace())
                .map(String::from)
                .collect(),
        )
    }

    #[test]
    fn haproxy_flags() {
        let o = p("-c -q -f a.cfg -f dir -p /run/h.pid -d -D").unwrap();
        assert!(o.check_only && o.quiet && o.debug && o.daemon);
        assert_eq!(
            o.config_paths,
            [PathBuf::from("a.cfg"), PathBuf::from("dir")]
        );
        assert_eq!(o.pidfile, Some(PathBuf::from("/run/h.pid")));
        let o = p("-Ws -f a.cfg -sf 12 13").unwrap();
        assert!(o.systemd && o.master_worker);
        assert_eq!(o.soft_stop_pids, [12, 13]);
        let o = p("-W -f a.cfg -st 7 -q").unwrap();
        assert!(o.master_worker && !o.systemd && o.quiet);
        assert_eq!(o.hard_stop_pids, [7]);
        assert_eq!(p("-v").unwrap().version, 1);
        assert_eq!(p("-vv").unwrap().version, 2);
    }

    #[test]
    fn bad_flags() {
        assert!(matches!(p("-f"), Err(CliError::Usage(_))));
        assert!(matches!(p("-x -f a"), Err(CliError::Usage(_))));
        assert!(matches!(p(""), Err(CliError::Usage(_))));
        assert!(matches!(p("-sf abc -f a"), Err(CliError::Usage(_))));
        assert!(matches!(p("-h"), Err(CliError::Help(_))));
    }

    #[test]
    fn version() {
        assert!(version_text(false).starts_with("harp version 0.1.0"));
        let vv = version_text(true);
        assert!(vv.contains("Built with Lua version : Lua 5.4"), "{vv}");
        assert!(vv.contains("io_uring : "));
        assert!(vv.contains("splice : "));
    }
}
