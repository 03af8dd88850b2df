//! Command line of `harp-perf`: the upstream server, the load generator and the small probes
//! `perf/compare.sh` needs (free port, wait for a port, CPU of a pid, HAProxy's stats socket,
//! machine busy fraction).

use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

use crate::load::{self, Direction, LoadCfg, Scenario};
use crate::net;
use crate::procstat;
use crate::upstream::{self, Mode, Sizes, Upstream};

/// Load generator and upstream for comparing harp with HAProxy, nginx stream and a direct
/// loopback connection.
#[derive(Parser, Debug)]
#[command(name = "harp-perf", version)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Serve as the backend: echo, sink, fixed-size answers or a byte source.
    Upstream {
        /// Addresses, comma separated: `127.0.0.1:PORT`, a bare `PORT`, or `MODE@ADDR` to give one
        /// address its own mode (e.g. `echo@127.0.0.1:7001,sink@127.0.0.1:7002`).
        #[arg(long)]
        listen: String,
        /// Mode for addresses without a `MODE@` prefix.
        #[arg(long, value_enum, default_value = "echo")]
        mode: Mode,
        /// Response size in `fixed` mode (and write size in `source` mode).
        #[arg(long, default_value_t = 100)]
        size: usize,
        /// Request size in `fixed` mode: every REQ bytes read get SIZE bytes back.
        #[arg(long, default_value_t = 100)]
        req: usize,
        /// Event-loop threads (each with its own SO_REUSEPORT listener per address).
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// Generate load against a target and report.
    Load {
        /// `127.0.0.1:PORT` of the proxy (or of the upstream, for the direct baseline).
        #[arg(long)]
        target: String,
        /// What to measure.
        #[arg(long, value_enum)]
        scenario: Scenario,
        /// Connections (throughput, rr) or concurrent workers (connrate).
        #[arg(long, default_value_t = 4)]
        conns: usize,
        /// Measured window, after the warm-up (e.g. 10s, 300ms).
        #[arg(long, default_value = "10s")]
        duration: String,
        /// Warm-up before measuring.
        #[arg(long, default_value = "1s")]
        warmup: String,
        /// rr: total offered requests per second over all connections; 0 = closed loop.
        #[arg(long, default_value_t = 10_000.0)]
        rate: f64,
        /// rr/connrate request size in bytes.
        #[arg(long, default_value_t = 100)]
        req: usize,
        /// rr/connrate response size in bytes (the upstream must answer this many).
        #[arg(long, default_value_t = 100)]
        resp: usize,
        /// throughput: up (to a sink), down (from a source) or both (through an echo).
        #[arg(long, value_enum, default_value = "up")]
        dir: Direction,
        /// connrate: who closes first. `client` closes right after the response; `server` waits
        /// for the server's FIN (use a `once` upstream), like HTTP/1.0 `Connection: close`.
        #[arg(long, value_enum, default_value = "client")]
        close: Closer,
        /// throughput: bytes per write/read call.
        #[arg(long, default_value_t = 128 * 1024)]
        chunk: usize,
        /// Pids (comma separated) whose CPU and RSS are accounted; children are included.
        #[arg(long, value_delimiter = ',')]
        cpu_pid: Vec<u32>,
        /// Print one JSON line instead of text.
        #[arg(long)]
        json: bool,
        /// connrate, throughput (up or down): speak TLS to the target (a full handshake per
        /// connection, any certificate taken).
        #[arg(long)]
        tls: bool,
        /// rr: write each measured request to this file, one `intended_unix_us latency_us`
        /// line per request (for `perf/spinsplit.py`).
        #[arg(long)]
        dump: Option<std::path::PathBuf>,
    },
    /// Print the CPU seconds (user+system) and RSS of pids and their children.
    Cpu {
        /// Pids, comma separated.
        #[arg(long, value_delimiter = ',', required = true)]
        pid: Vec<u32>,
    },
    /// Print a TCP port free on 127.0.0.1 right now.
    Freeport,
    /// Wait until something accepts on ADDR; exit 1 after the timeout.
    WaitPort {
        /// Address to probe.
        #[arg(long)]
        addr: String,
        /// Give up after this long.
        #[arg(long, default_value = "5s")]
        timeout: String,
    },
    /// Send one command to an HAProxy stats socket and print the answer.
    Haproxy {
        /// Path of the UNIX stats socket.
        #[arg(long)]
        socket: String,
        /// Command line to send.
        #[arg(long, default_value = "show info")]
        cmd: String,
    },
    /// Flap a server through the Runtime API (disable/enable server) and time each command.
    Flap {
        /// Path of the UNIX stats socket.
        #[arg(long)]
        socket: String,
        /// `backend/server` to flap.
        #[arg(long)]
        server: String,
        /// Time between two commands.
        #[arg(long, default_value = "100ms")]
        interval: String,
        /// How long to flap.
        #[arg(long, default_value = "10s")]
        duration: String,
        /// Write `index command send_unix_us rtt_us` per command to this file.
        #[arg(long)]
        log: Option<String>,
    },
    /// Wait (bounded) for the machine to be quiet; print the busy fraction (0-1) measured last.
    Quiet {
        /// Busy fraction counted as quiet.
        #[arg(long, default_value_t = 0.25)]
        busy: f64,
        /// Longest wait.
        #[arg(long, default_value = "0s")]
        max_wait: String,
    },
}

/// Executes the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Upstream {
            listen,
            mode,
            size,
            req,
            threads,
        } => {
            let listens = upstream::parse_listen(&listen, mode)?;
            let up = Upstream::start(&listens, Sizes { req, size }, threads)?;
            for (l, a) in listens.iter().zip(up.addrs()) {
                eprintln!("harp-perf upstream: {:?} on {a}", l.mode);
            }
            up.wait();
            Ok(())
        }
        Cmd::Load {
            target,
            scenario,
            conns,
            duration,
            warmup,
            rate,
            req,
            resp,
            dir,
            close,
            chunk,
            cpu_pid,
            json,
            dump,
            tls,
        } => {
            if !(rate.is_finite() && rate >= 0.0) {
                bail!("--rate must be >= 0");
            }
            let cfg = LoadCfg {
                target: net::loopback_addr(&target)?,
                scenario,
                conns: conns.clamp(1, 10_000),
                duration: net::parse_duration(&duration)?,
                warmup: net::parse_duration(&warmup)?,
                rate,
                req: req.clamp(1, 64 << 20),
                resp: resp.clamp(1, 64 << 20),
                dir,
                server_closes: close == Closer::Server,
                chunk: chunk.clamp(1, 16 << 20),
                cpu_pids: cpu_pid,
                dump,
                tls: tls.then(crate::tls::client_config),
            };
            let r = load::run(&cfg)?;
            if json {
                println!("{}", r.to_json());
            } else {
                print!("{}", r.to_text());
            }
            if r.primary() <= 0.0 {
                std::process::exit(2);
            }
            Ok(())
        }
        Cmd::Cpu { pid } => {
            let cpu = procstat::cpu_seconds(&pid)?;
            let rss = procstat::rss_kib(&pid).unwrap_or(0);
            println!("{cpu:.3} {rss}");
            Ok(())
        }
        Cmd::Freeport => {
            println!("{}", net::free_port()?);
            Ok(())
        }
        Cmd::WaitPort { addr, timeout } => {
            net::wait_port(net::loopback_addr(&addr)?, net::parse_duration(&timeout)?)
        }
        Cmd::Haproxy { socket, cmd } => {
            print!("{}", haproxy_cmd(&socket, &cmd)?);
            Ok(())
        }
        Cmd::Flap {
            socket,
            server,
            interval,
            duration,
            log,
        } => {
            let cfg = crate::flap::FlapCfg {
                socket,
                server,
                interval: net::parse_duration(&interval)?.max(Duration::from_millis(1)),
                duration: net::parse_duration(&duration)?,
                log,
            };
            println!("{}", crate::flap::run(&cfg)?);
            Ok(())
        }
        Cmd::Quiet { busy, max_wait } => {
            let b = procstat::wait_quiet(busy, net::parse_duration(&max_wait)?)?;
            println!("{b:.3}");
            Ok(())
        }
    }
}

/// Which side of a connrate connection closes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Closer {
    /// The client closes after reading the response.
    Client,
    /// The server closes after answering; the client waits for its FIN.
    Server,
}

/// One request/answer on HAProxy's stats socket (it answers and closes in non-interactive mode).
fn haproxy_cmd(path: &str, cmd: &str) -> Result<String> {
    crate::flap::socket_cmd(path, cmd, Duration::from_secs(2))
}
