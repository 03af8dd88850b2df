//! End-to-end self-test of the harness: an in-process upstream and every scenario run briefly
//! against it directly. Bounded (a few hundred ms per scenario) so it can run in CI.

use std::time::Duration;

use crate::load::{self, Direction, LoadCfg, Scenario};
use crate::upstream::{parse_listen, Mode, Sizes, Upstream};

fn cfg(target: std::net::SocketAddr, scenario: Scenario) -> LoadCfg {
    LoadCfg {
        target,
        scenario,
        conns: 2,
        duration: Duration::from_millis(300),
        warmup: Duration::from_millis(50),
        rate: 2_000.0,
        req: 100,
        resp: 100,
        dir: Direction::Up,
        server_closes: false,
        chunk: 64 * 1024,
        cpu_pids: vec![std::process::id()],
        dump: None,
        tls: None,
    }
}

#[test]
fn every_scenario_measures_something() {
    let listens = parse_listen(
        "echo@127.0.0.1:0,sink@127.0.0.1:0,source@127.0.0.1:0,fixed@127.0.0.1:0,once@127.0.0.1:0",
        Mode::Echo,
    )
    .unwrap_or_default();
    assert_eq!(listens.len(), 5);
    let up = match Upstream::start(&listens, Sizes { req: 10, size: 300 }, 2) {
        Ok(u) => u,
        Err(e) => panic!("upstream: {e:#}"),
    };
    let (echo, sink, source, fixed, once) = (
        up.addrs()[0],
        up.addrs()[1],
        up.addrs()[2],
        up.addrs()[3],
        up.addrs()[4],
    );

    let run = |c: LoadCfg| match load::run(&c) {
        Ok(r) => r,
        Err(e) => panic!("{:?}: {e:#}", c.scenario),
    };

    let r = run(cfg(sink, Scenario::Throughput));
    assert!(r.gbit_s() > 0.0 && r.errors == 0, "{}", r.to_text());
    assert!(r.cpu_s_per_gb().is_some());

    let r = run(LoadCfg {
        dir: Direction::Both,
        ..cfg(echo, Scenario::Throughput)
    });
    assert!(r.tx_bytes > 0 && r.rx_bytes > 0, "{}", r.to_text());

    let r = run(LoadCfg {
        dir: Direction::Down,
        ..cfg(source, Scenario::Throughput)
    });
    assert!(r.rx_bytes > 0, "{}", r.to_text());

    let r = run(cfg(echo, Scenario::Connrate));
    assert!(r.conn_s() > 0.0 && r.errors == 0, "{}", r.to_text());
    assert!(r.cpu_us_per_conn().is_some() && r.latency.is_some());

    // Server closes first: the `once` upstream answers `size` (300) bytes per `req` (10) bytes.
    let r = run(LoadCfg {
        server_closes: true,
        req: 10,
        resp: 300,
        ..cfg(once, Scenario::Connrate)
    });
    assert!(r.conn_s() > 0.0 && r.errors == 0, "{}", r.to_text());

    let r = run(cfg(echo, Scenario::Rr));
    assert!(r.req_s() > 0.0 && r.errors == 0, "{}", r.to_text());
    let l = r.latency.clone().unwrap_or_default();
    assert!(
        l.p50 > 0 && l.p50 <= l.p99 && l.p99 <= l.max,
        "{}",
        r.to_text()
    );
    // Offered 2,000/s for 0.3 s: about 600 scheduled; a loaded CI machine may send fewer.
    assert!(r.requests > 100, "{}", r.to_text());
    assert!(r.cpu_us_per_req().is_some(), "{}", r.to_text());
    assert!(r.to_json().contains("\"cpu_us_per_req\":"));

    let r = run(LoadCfg {
        req: 10,
        resp: 300,
        rate: 0.0,
        ..cfg(fixed, Scenario::Rr)
    });
    assert!(r.req_s() > 0.0 && r.errors == 0, "{}", r.to_text());
    assert!(r.to_json().contains("\"scenario\":\"rr\""));

    let r = run(LoadCfg {
        conns: 50,
        warmup: Duration::from_millis(10),
        ..cfg(echo, Scenario::Idle)
    });
    assert_eq!(r.connections, 50, "{}", r.to_text());
    assert!(r.rss_per_conn_b().is_some(), "{}", r.to_text());
}

#[test]
fn dead_target_fails_fast() {
    // A port nobody listens on: the run must end early with errors, not wait out its duration.
    let port = crate::net::free_port().unwrap_or(1);
    let target = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let started = std::time::Instant::now();
    for sc in [Scenario::Throughput, Scenario::Connrate, Scenario::Rr] {
        let c = LoadCfg {
            duration: Duration::from_secs(3),
            ..cfg(target, sc)
        };
        let r = load::run(&c).unwrap_or_default();
        assert!(r.primary() == 0.0 && r.errors > 0, "{}", r.to_text());
    }
    assert!(started.elapsed() < Duration::from_secs(3));
}
