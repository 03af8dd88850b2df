//! `harp-perf`: the load generator and upstream used to compare harp with HAProxy, nginx `stream`
//! and a direct loopback connection. One binary so that the client and the server of every
//! comparison are the same code on every target; `perf/compare.sh` drives it.

mod cli;
mod connrate;
mod flap;
mod idle;
mod load;
mod net;
mod procstat;
mod report;
mod rr;
mod throughput;
mod tls;
mod upstream;

#[cfg(test)]
mod selftest;

use anyhow::Result;
use clap::Parser;

fn main() -> Result<()> {
    let args = cli::Cli::parse();
    procstat::raise_nofile();
    cli::run(args)
}
