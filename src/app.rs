//! Wires the modules together for `harp -f`: model, Lua (init before checks), checks, workers,
//! Runtime API, then waits for a stop signal.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Config;
use crate::events::EventBus;
use crate::model::Registry;
use crate::{admin, health, lua, peers, worker};

/// Process-level settings from the command line.
#[derive(Debug, Clone, Default)]
pub struct RunSettings {
    /// `-p <pidfile>` (or `pidfile` in global).
    pub pidfile: Option<PathBuf>,
    /// `-q`: no stderr log lines.
    pub quiet: bool,
    /// `-d`: debug mode (debug-level Lua messages reach stderr too).
    pub debug: bool,
    /// `-sf <pid>...`: the processes this one replaces, told to finish (SIGUSR1) once it
    /// listens; they hand their stick tables over first when a `peers` section shares them.
    pub soft_stop_pids: Vec<u32>,
    /// `-st <pid>...`: the processes this one replaces, terminated (SIGTERM) once it listens.
    pub hard_stop_pids: Vec<u32>,
}

/// Why harp could not run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The data plane failed to start.
    #[error(transparent)]
    Worker(#[from] worker::WorkerError),
    /// Checks failed to start.
    #[error(transparent)]
    Health(#[from] health::HealthError),
    /// The Runtime API failed to start.
    #[error(transparent)]
    Admin(#[from] admin::AdminError),
    /// Peers failed to start.
    #[error(transparent)]
    Peers(#[from] peers::PeersError),
    /// Lua failed to start.
    #[error(transparent)]
    Lua(#[from] lua::LuaError),
    /// Signals or the pidfile.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Runs harp until SIGTERM/SIGINT (hard stop) or SIGUSR1 (graceful stop).
pub fn run(config: Config, settings: RunSettings) -> Result<(), AppError> {
    use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
    crate::logging::set_quiet(settings.quiet);
    crate::logging::set_debug_mode(settings.debug);
    let pidfile = settings
        .pidfile
        .clone()
        .or_else(|| config.global.pidfile.clone());
    if let Some(n) = config.global.ulimit_n {
        // before anything counts its file descriptors (the fd plan, `show info` Ulimit-n)
        if let Err(e) = crate::sys::set_nofile_limit(n) {
            crate::logging::warning(&format!(
                "[{}] : Cannot raise FD limit to {n}, limit is {}: {e}.",
                std::env::args().next().unwrap_or_else(|| "harp".into()),
                crate::sys::nofile_limit()
            ));
        }
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGUSR1])?;
    let bus = Arc::new(EventBus::new());
    let mut config = config;
    crate::model::state_file::preload_addresses(&mut config);
    let reg = Registry::new(config, bus);
    // the states saved before a restart, before anything checks or forwards
    crate::model::state_file::load(&reg);
    // the rings before anything logs into them
    crate::logging::ring::install(&reg.config.rings);
    let rings = crate::logging::ring::start_forwarders(&reg.config.rings)?;
    let engine = Arc::new(lua::start(reg.clone())?);
    // the tables are shared (and learnt from a peer) before traffic changes them
    let peers = peers::start(&reg, !settings.soft_stop_pids.is_empty())?;
    let checker = health::start(reg.clone())?;
    // the Runtime API listens before traffic does: whoever waits for the traffic port (a
    // script, a test) may talk to the API at once
    let peers = Arc::new(peers);
    let extensions: admin::InfoHook =
        Arc::new(admin::Extensions(vec![engine.clone(), peers.clone()]));
    let admin = admin::start(reg.clone(), extensions)?;
    let workers = worker::start(reg.clone())?;
    if let Some(p) = &pidfile {
        std::fs::write(p, format!("{}\n", std::process::id()))?;
    }
    // this process listens: the ones it replaces may go
    signal_old(&settings.soft_stop_pids, rustix::process::Signal::Usr1);
    signal_old(&settings.hard_stop_pids, rustix::process::Signal::Term);
    let graceful = signals
        .forever()
        .next()
        .map(|s| s == SIGUSR1)
        .unwrap_or(false);
    reg.stopping
        .store(true, std::sync::atomic::Ordering::Relaxed);
    admin.stop();
    checker.stop();
    if graceful {
        peers.hand_over();
    }
    workers.stop(graceful);
    workers.wait();
    peers.finish_hand_over(std::time::Duration::from_secs(8));
    peers.stop();
    engine.stop();
    // what was logged until now still goes out, for a moment
    if let Some(r) = &rings {
        r.stop();
    }
    if let Some(p) = &pidfile {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

/// Sends `sig` to each of `pids` (`-sf`/`-st`); one gone already is not an error.
fn signal_old(pids: &[u32], sig: rustix::process::Signal) {
    for &pid in pids {
        let Some(p) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            continue;
        };
        if let Err(e) = rustix::process::kill_process(p, sig) {
            crate::logging::warning(&format!(
                "[WARNING] (harp) : cannot signal old process {pid}: {e}"
            ));
        }
    }
}
