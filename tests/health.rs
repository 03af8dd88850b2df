//! Health checks against real sockets on 127.0.0.1: listeners that the tests open, close,
//! black-hole, reset, garble, slow down and flap. Library-level (a `Config` built in code and an
//! in-process subscriber on the registry's bus), plus one end-to-end run of the binary.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use harp::config::{
    Capabilities, CheckKind, Config, HttpCheck, Location, ProxyConfig, ServerConfig, ServerParams,
};
use harp::events::{EventBus, EventData, EventType, ServerEvent, Subscription};
use harp::model::{AdminAction, Cause, CheckStatus, Command, OpState, Registry};

const DEADLINE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- targets

/// What a test listener does with each accepted connection.
#[derive(Clone)]
enum Behave {
    /// Accept and close.
    Close,
    /// Accept and reset (linger 0).
    Reset,
    /// Read the request, then write these bytes (after the delay) and close.
    Reply(Vec<u8>, Duration),
    /// Read the request, answer 200 and 503 in turn.
    Flap,
    /// Accept, never write, keep the socket until the listener stops.
    Hold,
    /// A different misbehaviour on each connection, chosen by a seeded generator.
    Chaos,
}

/// A listener on 127.0.0.1 served by a thread until dropped.
struct Target {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    served: Arc<AtomicU64>,
}

impl Target {
    fn start(behave: Behave) -> Target {
        Self::on(TcpListener::bind("127.0.0.1:0").unwrap(), behave)
    }

    fn on(l: TcpListener, behave: Behave) -> Target {
        let addr = l.local_addr().unwrap();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let (st, sv) = (stop.clone(), served.clone());
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !st.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((c, _)) => {
                        let n = sv.fetch_add(1, Ordering::Relaxed);
                        if let Some(c) = serve(c, &behave, n) {
                            held.push(c);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Target {
            addr,
            stop,
            thread: Some(thread),
            served,
        }
    }
}

fn serve(mut c: TcpStream, behave: &Behave, n: u64) -> Option<TcpStream> {
    c.set_nonblocking(false).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let read_req = |c: &mut TcpStream| {
        let mut buf = [0u8; 1024];
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => got.extend_from_slice(&buf[..k]),
            }
        }
        got
    };
    match behave {
        Behave::Close => None,
        Behave::Reset => {
            socket2::SockRef::from(&c)
                .set_linger(Some(Duration::ZERO))
                .ok()?;
            None
        }
        Behave::Reply(bytes, delay) => {
            let bytes = bytes.clone();
            let delay = *delay;
            std::thread::spawn(move || {
                read_req(&mut c);
                std::thread::sleep(delay);
                let _ = c.write_all(&bytes);
            });
            None
        }
        Behave::Flap => {
            read_req(&mut c);
            let r: &[u8] = if n % 2 == 0 {
                b"HTTP/1.0 200 OK\r\n\r\n"
            } else {
                b"HTTP/1.0 503 Service Unavailable\r\n\r\n"
            };
            let _ = c.write_all(r);
            None
        }
        Behave::Hold => Some(c),
        Behave::Chaos => {
            let mut x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xdead_beef;
            x ^= x >> 29;
            let junk: Vec<u8> = (0..(x % 300)).map(|i| (x >> (i % 56)) as u8).collect();
            let r: Vec<u8> = match x % 9 {
                0 => b"HTTP/1.1 200 OK\r\n\r\n".to_vec(),
                1 => b"HTTP/1.1 503 Busy\r\n\r\n".to_vec(),
                2 => b"HTTP/1.1 2".to_vec(),
                3 => junk,
                4 => vec![b'A'; 20_000],
                5 => b"HTTP/9.9 200 OK\r\n".to_vec(),
                6 => {
                    socket2::SockRef::from(&c)
                        .set_linger(Some(Duration::ZERO))
                        .ok()?;
                    return None;
                }
                7 => return None,
                _ => b"\r\n\r\n".to_vec(),
            };
            std::thread::spawn(move || {
                read_req(&mut c);
                let _ = c.write_all(&r);
            });
            None
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A port nothing listens on (bound then released).
fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

// ---------------------------------------------------------------- model set-up

struct Srv {
    addr: SocketAddr,
    rise: u32,
    fall: u32,
    inter_ms: u64,
}

fn srv(addr: SocketAddr, rise: u32, fall: u32, inter_ms: u64) -> Srv {
    Srv {
        addr,
        rise,
        fall,
        inter_ms,
    }
}

fn registry(
    servers: &[Srv],
    kind: CheckKind,
    tweak: impl FnOnce(&mut ProxyConfig),
) -> (Arc<Registry>, Arc<Subscription>) {
    let mut be = ProxyConfig::new(
        "be",
        Capabilities {
            frontend: false,
            backend: true,
        },
        Location::default(),
    );
    be.check = kind;
    be.servers = servers
        .iter()
        .enumerate()
        .map(|(i, s)| ServerConfig {
            name: format!("s{}", i + 1),
            addr: s.addr,
            params: ServerParams {
                check: true,
                rise: s.rise,
                fall: s.fall,
                inter: Duration::from_millis(s.inter_ms),
                ..Default::default()
            },
            location: Location::default(),
        })
        .collect();
    tweak(&mut be);
    let cfg = Config {
        proxies: vec![be],
        ..Default::default()
    };
    let bus = Arc::new(EventBus::new());
    let sub = bus.subscribe("test", 100_000, None);
    (Registry::new(cfg, bus), sub)
}

/// Events seen so far by the test subscriber.
struct Seen {
    sub: Arc<Subscription>,
    evs: Vec<Arc<ServerEvent>>,
}

impl Seen {
    fn new(sub: Arc<Subscription>) -> Seen {
        Seen {
            sub,
            evs: Vec::new(),
        }
    }

    /// Collects events until `pred` holds; panics after the deadline.
    fn until(&mut self, what: &str, pred: impl Fn(&[Arc<ServerEvent>]) -> bool) {
        let end = Instant::now() + DEADLINE;
        while !pred(&self.evs) {
            let left = end.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}: {:#?}",
                self.kinds()
            );
            if let Ok(e) = self
                .sub
                .receiver()
                .recv_timeout(left.min(Duration::from_millis(50)))
            {
                self.evs.push(e);
            }
        }
    }

    /// Collects for `d` more (only to prove that nothing else happens).
    fn settle(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            if let Ok(e) = self.sub.receiver().recv_timeout(left) {
                self.evs.push(e);
            }
        }
    }

    fn clear(&mut self) {
        self.evs.clear();
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.evs.iter().map(|e| e.kind.name()).collect()
    }

    fn count(&self, k: EventType) -> usize {
        self.evs.iter().filter(|e| e.kind == k).count()
    }

    fn checks(&self) -> Vec<(CheckStatus, u32, Option<i32>, Option<String>)> {
        self.evs
            .iter()
            .filter_map(|e| match &e.data {
                EventData::Check(r) => Some((
                    r.result.status,
                    r.health.cur,
                    r.result.code,
                    r.result.info.clone(),
                )),
                _ => None,
            })
            .collect()
    }
}

fn has(k: EventType) -> impl Fn(&[Arc<ServerEvent>]) -> bool {
    move |evs| evs.iter().any(|e| e.kind == k)
}

fn wait_state(reg: &Registry, path: &str, want: OpState) {
    let s = reg.find_server(path).unwrap();
    let end = Instant::now() + DEADLINE;
    while s.op_state() != want {
        assert!(Instant::now() < end, "{path} never reached {want:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every UP/DOWN is followed by SERVER_STATE, and UP/DOWN alternate (never twice in a row).
fn assert_transitions_well_formed(kinds: &[&str]) {
    let mut last: Option<&str> = None;
    for (i, k) in kinds.iter().enumerate() {
        if *k == "SERVER_UP" || *k == "SERVER_DOWN" {
            assert_eq!(kinds.get(i + 1), Some(&"SERVER_STATE"), "{kinds:?}");
            assert_ne!(last, Some(*k), "same transition twice: {kinds:?}");
            last = Some(k);
        }
    }
}

// ---------------------------------------------------------------- tests

#[test]
fn server_that_stops_listening_goes_down_after_fall_and_back_up_after_rise() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let target = Target::on(listener, Behave::Close);
    let (reg, sub) = registry(&[srv(addr, 2, 3, 50)], CheckKind::Tcp, |_| {});
    let mut seen = Seen::new(sub);
    let checker = harp::health::start(reg.clone()).unwrap();
    let s1 = reg.find_server("be/s1").unwrap();
    // First pass: health goes from rise to rise+fall-1 (reported), no state change.
    seen.until("first L4OK", has(EventType::ServerCheck));
    assert_eq!(seen.checks()[0].0, CheckStatus::L4Ok);
    assert_eq!(s1.check_state().health.cur, 4);
    assert_eq!(seen.count(EventType::ServerDown), 0);
    seen.clear();

    drop(target); // stops listening: connections are refused
    wait_state(&reg, "be/s1", OpState::Stopped);
    seen.until("down events", has(EventType::ServerState));
    let kinds = seen.kinds();
    assert_eq!(
        kinds,
        [
            "SERVER_CHECK",
            "SERVER_CHECK",
            "SERVER_CHECK",
            "SERVER_DOWN",
            "SERVER_STATE"
        ],
        "fall=3 checks, then one DOWN + STATE"
    );
    let checks = seen.checks();
    assert!(checks
        .iter()
        .all(|c| c.0 == CheckStatus::L4Con && c.3.as_deref() == Some("Connection refused")));
    assert_eq!(
        checks.iter().map(|c| c.1).collect::<Vec<_>>(),
        [3, 2, 0],
        "health counts down then drops to 0"
    );
    match &seen.evs[4].data {
        EventData::State(st) => {
            assert_eq!(
                (st.old_state, st.new_state),
                (OpState::Running, OpState::Stopped)
            );
            assert!(!st.admin);
            assert_eq!(
                st.check.as_ref().map(|c| c.result.status),
                Some(CheckStatus::L4Con)
            );
        }
        other => panic!("{other:?}"),
    }
    // More failed checks with the same status change nothing and publish nothing.
    seen.clear();
    seen.settle(Duration::from_millis(250));
    assert_eq!(seen.kinds(), Vec::<&str>::new());
    assert!(s1.counters.chkfail.load(Ordering::Relaxed) >= 3);

    // Listen again on the same port: UP after rise=2 successes.
    let back = Target::on(TcpListener::bind(addr).unwrap(), Behave::Close);
    wait_state(&reg, "be/s1", OpState::Running);
    seen.until("up events", has(EventType::ServerState));
    assert_eq!(
        seen.kinds(),
        ["SERVER_CHECK", "SERVER_CHECK", "SERVER_UP", "SERVER_STATE"]
    );
    assert_eq!(
        seen.checks().iter().map(|c| c.1).collect::<Vec<_>>(),
        [1, 4]
    );
    checker.stop();
    drop(back);
}

#[test]
fn l4_black_hole_times_out() {
    // A listener whose accept queue is full: further SYNs are dropped, connects hang.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..3 {
        let f = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        f.set_nonblocking(true).unwrap();
        let _ = f.connect(&addr.into());
        fillers.push(f);
    }
    std::thread::sleep(Duration::from_millis(50));
    let (reg, sub) = registry(&[srv(addr, 2, 2, 100)], CheckKind::Tcp, |_| {});
    let mut seen = Seen::new(sub);
    let checker = harp::health::start(reg.clone()).unwrap();
    seen.until("down", has(EventType::ServerState));
    assert_eq!(
        seen.kinds(),
        ["SERVER_CHECK", "SERVER_DOWN", "SERVER_STATE"]
    );
    let (status, cur, _, info) = seen.checks()[0].clone();
    assert_eq!((status, cur, info), (CheckStatus::L4Tout, 0, None));
    match &seen.evs[0].data {
        EventData::Check(r) => assert!(r.result.duration_ms >= 90, "{r:?}"),
        other => panic!("{other:?}"),
    }
    checker.stop();
    drop(sock);
}

#[test]
fn tcp_check_refused_names_the_connect_step() {
    let (reg, sub) = registry(&[srv(closed_port(), 2, 2, 50)], CheckKind::TcpCheck, |_| {});
    let mut seen = Seen::new(sub);
    let checker = harp::health::start(reg.clone()).unwrap();
    seen.until("down", has(EventType::ServerState));
    let c = &seen.checks()[0];
    assert_eq!(c.0, CheckStatus::L4Con);
    assert_eq!(
        c.3.as_deref(),
        Some("Connection refused at initial connection step of tcp-check")
    );
    checker.stop();
}

fn httpchk(expect: Option<u16>) -> CheckKind {
    CheckKind::Http(HttpCheck {
        method: "GET".into(),
        uri: "/health".into(),
        version: "HTTP/1.0".into(),
        headers: Vec::new(),
        expect_status: expect,
    })
}

#[test]
fn l7_black_hole_is_l7tout() {
    let t = Target::start(Behave::Hold);
    let (reg, sub) = registry(&[srv(t.addr, 2, 2, 80)], httpchk(None), |_| {});
    let mut seen = Seen::new(sub);
    let checker = harp::health::start(reg.clone()).unwrap();
    seen.until("down", has(EventType::ServerState));
    assert_eq!(
        seen.kinds(),
        ["SERVER_CHECK", "SERVER_DOWN", "SERVER_STATE"]
    );
    assert_eq!(seen.checks()[0].0, CheckStatus::L7Tout);
    checker.stop();
}

#[test]
fn slow_answer_hits_timeout_check() {
    // inter is long, but `timeout check` 60ms bounds the wait for the answer (sent after 400ms).
    let t = Target::start(Behave::Reply(
        b"HTTP/1.0 200 OK\r\n\r\n".to_vec(),
        Duration::from_millis(400),
    ));
    let (reg, sub) = registry(&[srv(t.addr, 2, 2, 1000)], httpchk(None), |p| {
        p.timeouts.connect = Some(Duration::from_millis(500));
        p.timeouts.check = Some(Duration::from_millis(60));
    });
    let mut seen = Seen::new(sub);
    let checker = harp::health::start(reg.clone()).unwrap();
    seen.until("down", has(EventType::ServerState));
    let c = match &seen.evs[0].data {
        EventData::Check(r) => r.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(c.result.status, CheckStatus::L7Tout);
    assert!(
        (50..350).contains(&c.result.duration_ms),
        "bounded by timeout check, not by the slow answer: {c:?}"
    );
    checker.stop();
}

#[test]
fn reset_after_accept_fails_the_http_check() {
    let t = Target::start(Behave::Reset);
    let (reg, sub) = registry(&[srv(t.addr, 2, 2, 250)], httpchk(None), |_| {});
    let mut seen = Seen::new(sub);
    let checker = harp::health::start(reg.clone()).unwrap();
    seen.until("down", has(EventType::ServerState));
    let st = seen.checks()[0].0;
    assert!(
        matches!(st, CheckStatus::SockErr | CheckStatus::L7Rsp),
        "{st:?}"
    );
    checker.stop();
}

#[test]
fn garbage_answer_is_l7rsp() {
    let t = Target::start(Behave::Reply(
        b"SSH-2.0-OpenSSH_9.6\r\n".to_vec(),
        Duration::ZERO,
    ));
    let (reg, sub) = registry(&[srv(t.addr, 2, 2, 250)], httpchk(None), |_| {});
    let mut seen = Seen::new(sub);
    let checker = harp::health::start(reg.clone()).unwrap();
    seen.until("down", has(EventType::ServerState));
    let (st, _, code, info) = seen.checks()[0].clone();
    assert_eq!((st, code), (CheckStatus::L7Rsp, None));
    assert_eq!(
        info, None,
        "HAProxy 3.x gives no info for an unparsable response"
    );
    assert!(t.served.load(Ordering::Relaxed) >= 1);
    checker.stop();
}

#[test]
fn httpchk_status_and_expect_status() {
    let ok = Target::start(Behave::Reply(
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
        Duration::ZERO,
    ));
    let e503 = Target::start(Behave::Reply(
        b"HTTP/1.1 503 Service Unavailable\r\n\r\n".to_vec(),
        Duration::ZERO,
    ));
    let e404 = Target::start(Behave::Reply(
        b"HTTP/1.0 404 Not Found\r\n\r\n".to_vec(),
        Duration::ZERO,
    ));
    // Default: 2xx/3xx pass.
    let (reg, sub) = registry(
        &[srv(ok.addr, 2, 2, 250), srv(e503.addr, 2, 2, 250)],
        httpchk(None),
        |_| {},
    );
    let mut seen = Seen::new(sub);
    let checker = harp::health::start(reg.clone()).unwrap();
    seen.until("s2 down", has(EventType::ServerState));
    seen.until("s1 checked", |evs| {
        evs.iter()
            .any(|e| &*e.name == "s1" && e.kind == EventType::ServerCheck)
    });
    for e in &seen.evs {
        if let EventData::Check(r) = &e.data {
            let want = if &*e.name == "s1" {
                (CheckStatus::L7Ok, Some(200), None)
            } else {
                (CheckStatus::L7Sts, Some(503), Some("Service Unavailable"))
            };
            assert_eq!(
                (r.result.status, r.result.code, r.result.info.as_deref()),
                want
            );
        }
    }
    assert_eq!(
        reg.find_server("be/s1").unwrap().op_state(),
        OpState::Running
    );
    checker.stop();

    // `http-check expect status 404`: 404 passes, 200 fails.
    let (reg, sub) = registry(
        &[srv(e404.addr, 2, 2, 250), srv(ok.addr, 2, 2, 250)],
        httpchk(Some(404)),
        |_| {},
    );
    let mut seen = Seen::new(sub);
    let checker = harp::health::start(reg.clone()).unwrap();
    seen.until("s2 down", has(EventType::ServerDown));
    seen.until("s1 checked", |evs| {
        evs.iter()
            .any(|e| &*e.name == "s1" && e.kind == EventType::ServerCheck)
    });
    for e in &seen.evs {
        if let EventData::Check(r) = &e.data {
            let want = if &*e.name == "s1" {
                (CheckStatus::L7Ok, Some(404))
            } else {
                (CheckStatus::L7Sts, Some(200))
            };
            assert_eq!((r.result.status, r.result.code), want);
        }
    }
    assert_eq!(
        reg.find_server("be/s1").unwrap().op_state(),
        OpState::Running
    );
    checker.stop();
}

#[test]
fn flapping_target_follows_rise_and_fall_exactly() {
    // rise 1 / fall 1: every alternation is a state change, each reported once.
    let t = Target::start(Behave::Flap);
    let (reg, sub) = registry(&[srv(t.addr, 1, 1, 100)], httpchk(None), |_| {});
    let mut seen = Seen::new(sub);
    let checker = harp::health::start(reg.clone()).unwrap();
    seen.until("six transitions", |evs| {
        evs.iter()
            .filter(|e| matches!(e.kind, EventType::ServerUp | EventType::ServerDown))
            .count()
            >= 6
    });
    checker.stop();
    seen.settle(Duration::from_millis(20));
    let kinds = seen.kinds();
    assert_transitions_well_formed(&kinds);
    // Each check with a new status is one SERVER_CHECK, each state change exactly one UP/DOWN.
    let checks = seen.checks();
    let flips = seen.count(EventType::ServerUp) + seen.count(EventType::ServerDown);
    assert!(flips >= 6);
    assert!(
        checks.len() >= flips && checks.len() <= flips + 1,
        "{kinds:?}"
    );
    for w in checks.windows(2) {
        assert_ne!(w[0].0, w[1].0, "statuses alternate: {checks:?}");
    }
    drop(t);

    // rise 2 / fall 2 against the same alternation: never two failures in a row, so it stays UP.
    let t = Target::start(Behave::Flap);
    let (reg, sub) = registry(&[srv(t.addr, 2, 2, 100)], httpchk(None), |_| {});
    let mut seen = Seen::new(sub);
    let checker = harp::health::start(reg.clone()).unwrap();
    seen.until("six checks", |evs| {
        evs.iter()
            .filter(|e| e.kind == EventType::ServerCheck)
            .count()
            >= 6
    });
    checker.stop();
    assert_eq!(seen.count(EventType::ServerDown), 0, "{:?}", seen.kinds());
    assert_eq!(
        reg.find_server("be/s1").unwrap().op_state(),
        OpState::Running
    );
}

#[test]
fn enable_health_on_a_dynamic_server_starts_checks_and_delete_stops_them() {
    let (reg, sub) = registry(&[], CheckKind::Tcp, |_| {});
    let mut seen = Seen::new(sub);
    let checker = harp::health::start(reg.clone()).unwrap();
    let target = closed_port();
    let out = reg
        .apply(Command::AddServer {
            backend: "be".into(),
            config: Box::new(ServerConfig {
                name: "dyn".into(),
                addr: target,
                params: ServerParams {
                    check: true,
                    rise: 2,
                    fall: 2,
                    inter: Duration::from_millis(40),
                    ..Default::default()
                },
                location: Location::default(),
            }),
        })
        .unwrap();
    let dynsrv = out.server.unwrap();
    // Not enabled yet: no check runs.
    seen.settle(Duration::from_millis(300));
    assert_eq!(seen.count(EventType::ServerCheck), 0, "{:?}", seen.kinds());
    reg.apply(Command::SetCheckEnabled {
        server: dynsrv.clone(),
        enabled: true,
    })
    .unwrap();
    // Enabled but still in maintenance: checks are paused, as in HAProxy.
    seen.settle(Duration::from_millis(300));
    assert_eq!(seen.count(EventType::ServerCheck), 0, "{:?}", seen.kinds());
    // `enable server`: starts UP with health = rise, checked at once, DOWN on the first failure.
    reg.apply(Command::SetAdmin {
        server: dynsrv.clone(),
        action: AdminAction::Ready,
        cause: Cause::Cli,
    })
    .unwrap();
    seen.until("down after the first check", has(EventType::ServerDown));
    seen.until("state", |evs| {
        evs.last().is_some_and(|e| e.kind == EventType::ServerState)
    });
    assert_eq!(
        seen.kinds(),
        [
            "SERVER_ADD",
            "SERVER_ADMIN",
            "SERVER_UP",
            "SERVER_STATE",
            "SERVER_CHECK",
            "SERVER_DOWN",
            "SERVER_STATE"
        ]
    );
    assert_eq!(seen.checks()[0].0, CheckStatus::L4Con);
    // Delete: checks stop (SetAdmin Maint first, as HAProxy requires).
    reg.apply(Command::SetAdmin {
        server: dynsrv.clone(),
        action: AdminAction::Maint,
        cause: Cause::Cli,
    })
    .unwrap();
    reg.apply(Command::DelServer {
        server: dynsrv.clone(),
    })
    .unwrap();
    let fails = dynsrv.counters.chkfail.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        dynsrv.counters.chkfail.load(Ordering::Relaxed) <= fails + 1,
        "checks must stop after del server"
    );
    checker.stop();
}

#[test]
fn check_addr_and_port_override_the_server_address() {
    let t = Target::start(Behave::Close);
    let (reg, sub) = registry(&[srv(closed_port(), 2, 2, 50)], CheckKind::Tcp, |p| {
        p.servers[0].params.check_addr = Some(t.addr.ip());
        p.servers[0].params.check_port = Some(t.addr.port());
    });
    let mut seen = Seen::new(sub);
    let checker = harp::health::start(reg.clone()).unwrap();
    seen.until("check", has(EventType::ServerCheck));
    assert_eq!(seen.checks()[0].0, CheckStatus::L4Ok);
    checker.stop();
}

// ---------------------------------------------------------------- end to end

/// `[WARNING]  (1234) : msg` → `[WARNING]  (PID) : msg`; check durations → `0ms` (the reference
/// ran on loopback too, but a loaded test machine may take a millisecond).
fn normalise(line: &str) -> String {
    let mut out = match (line.find('('), line.find(')')) {
        (Some(a), Some(b)) if a < b => format!("{}(PID){}", &line[..a], &line[b + 1..]),
        _ => line.to_string(),
    };
    if let Some(i) = out.find("check duration: ") {
        let start = i + "check duration: ".len();
        if let Some(len) = out[start..].find("ms") {
            out.replace_range(start..start + len, "0");
        }
    }
    out
}

#[test]
fn binary_logs_health_checks_like_haproxy() {
    let port = common::free_port();
    let other = common::free_port();
    let harp = common::Harp::spawn(
        &format!(
            "global\ndefaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    \
             timeout server 5s\nbackend test\n    balance roundrobin\n    option log-health-checks\n    \
             server webserver1 127.0.0.1:{port} check inter 100ms rise 2 fall 2\n    \
             server webserver2 127.0.0.1:{other}\n"
        ),
        &[],
    );
    assert!(
        harp.wait_log("Server test/webserver1 is DOWN."),
        "{}",
        harp.stderr()
    );
    let up = Target::on(
        TcpListener::bind(("127.0.0.1", port)).unwrap(),
        Behave::Close,
    );
    assert!(
        harp.wait_log("Server test/webserver1 is UP."),
        "{}",
        harp.stderr()
    );
    let stderr = harp.stderr();
    drop(harp);
    drop(up);
    // From shared/reference/haproxy-3.2-log-lines.txt (lines 4-8 of the transcript).
    let want = [
        r#"[WARNING]  (PID) : Health check for server test/webserver1 failed, reason: Layer4 connection problem, info: "Connection refused", check duration: 0ms, status: 0/2 DOWN."#,
        "[WARNING]  (PID) : Server test/webserver1 is DOWN. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
        "[WARNING]  (PID) : Health check for server test/webserver1 succeeded, reason: Layer4 check passed, check duration: 0ms, status: 1/2 DOWN.",
        "[WARNING]  (PID) : Health check for server test/webserver1 succeeded, reason: Layer4 check passed, check duration: 0ms, status: 2/2 UP.",
        "[WARNING]  (PID) : Server test/webserver1 is UP. 2 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.",
    ];
    let got: Vec<String> = stderr
        .lines()
        .filter(|l| l.contains("webserver1") || l.contains("backend 'test'"))
        .map(normalise)
        .collect();
    assert_eq!(got, want);
}

#[test]
fn set_addr_moves_the_checks() {
    let t = Target::start(Behave::Close);
    let (reg, sub) = registry(&[srv(closed_port(), 2, 2, 50)], CheckKind::Tcp, |_| {});
    let mut seen = Seen::new(sub);
    let checker = harp::health::start(reg.clone()).unwrap();
    wait_state(&reg, "be/s1", OpState::Stopped);
    reg.apply(Command::SetAddr {
        server: reg.find_server("be/s1").unwrap(),
        ip: t.addr.ip(),
        port: Some(t.addr.port()),
        cause: Cause::Cli,
    })
    .unwrap();
    wait_state(&reg, "be/s1", OpState::Running);
    seen.until("up + state", |evs| {
        evs.iter().any(|e| e.kind == EventType::ServerUp)
            && evs.last().is_some_and(|e| e.kind == EventType::ServerState)
    });
    assert_transitions_well_formed(&seen.kinds());
    assert!(seen.count(EventType::ServerInetAddr) == 1);
    checker.stop();
}

#[test]
fn chaotic_target_never_breaks_the_state_machine() {
    let targets: Vec<Target> = (0..4).map(|_| Target::start(Behave::Chaos)).collect();
    let servers: Vec<Srv> = targets.iter().map(|t| srv(t.addr, 2, 2, 20)).collect();
    let (reg, sub) = registry(&servers, httpchk(None), |p| {
        p.timeouts.check = Some(Duration::from_millis(15));
        p.timeouts.connect = Some(Duration::from_millis(15));
    });
    let mut seen = Seen::new(sub);
    let checker = harp::health::start(reg.clone()).unwrap();
    seen.until("many checks", |evs| {
        evs.iter()
            .filter(|e| e.kind == EventType::ServerCheck)
            .count()
            >= 60
    });
    checker.stop();
    seen.settle(Duration::from_millis(20));
    for name in ["s1", "s2", "s3", "s4"] {
        let kinds: Vec<&str> = seen
            .evs
            .iter()
            .filter(|e| &*e.name == name)
            .map(|e| e.kind.name())
            .collect();
        assert_transitions_well_formed(&kinds);
    }
    for e in &seen.evs {
        if let EventData::Check(r) = &e.data {
            assert!(r.health.cur < r.health.rise + r.health.fall, "{r:?}");
            assert!(
                matches!(
                    r.result.status,
                    CheckStatus::L7Ok
                        | CheckStatus::L7Sts
                        | CheckStatus::L7Rsp
                        | CheckStatus::L7Tout
                        | CheckStatus::SockErr
                        | CheckStatus::L4Tout
                        | CheckStatus::L4Con
                ),
                "{r:?}"
            );
            assert_eq!(r.result.code.is_some(), r.result.status.has_code(), "{r:?}");
        }
    }
    // The model's view matches the last reported transition of each server.
    for s in reg.all_servers() {
        let last = seen.evs.iter().rev().find(|e| {
            e.name == s.name && matches!(e.kind, EventType::ServerUp | EventType::ServerDown)
        });
        if let Some(e) = last {
            assert_eq!(e.kind == EventType::ServerUp, s.op_state().is_up());
        }
    }
}

/// A server with `send-proxy` / `send-proxy-v2` gets the PROXY protocol header before each
/// check too, as HAProxy 2.6 sends it (captured): v1 names the check's own connection, v2 is a
/// `LOCAL` header, the HTTP request follows in the same write.
#[test]
fn checks_of_a_send_proxy_server_start_with_the_header() {
    for (v, want_start) in [
        (
            harp::config::ProxyProtocol::V1,
            &b"PROXY TCP4 127.0.0.1 127.0.0.1 "[..],
        ),
        (
            harp::config::ProxyProtocol::V2,
            b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00GET /health HTTP/1.0\r\n",
        ),
    ] {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut c, peer) = l.accept().unwrap();
            c.set_read_timeout(Some(DEADLINE)).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 512];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = c.read(&mut buf).unwrap();
                assert!(n > 0, "closed after {got:?}");
                got.extend_from_slice(&buf[..n]);
            }
            c.write_all(b"HTTP/1.0 200 OK\r\n\r\n").unwrap();
            (got, peer)
        });
        let spec = harp::health::ProbeSpec {
            addr,
            kind: httpchk(Some(200)),
            inter: Duration::from_secs(5),
            timeout_connect: None,
            timeout_check: None,
            proxy: Some(v),
            rules: Default::default(),
            proto: false,
            source: None,
            tls: None,
            rule_tls: None,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let res = rt.block_on(harp::health::probe(&spec));
        assert_eq!(res.status, CheckStatus::L7Ok, "{v:?}");
        let (got, peer) = server.join().unwrap();
        assert!(
            got.starts_with(want_start),
            "{v:?}: {:?}",
            String::from_utf8_lossy(&got)
        );
        if v == harp::config::ProxyProtocol::V1 {
            let line = format!(
                "PROXY TCP4 127.0.0.1 127.0.0.1 {} {}\r\nGET ",
                peer.port(),
                addr.port()
            );
            assert!(
                got.starts_with(line.as_bytes()),
                "{:?}",
                String::from_utf8_lossy(&got)
            );
        }
    }
}

// ---------------------------------------------------------------- tcp-check rules

/// A line-oriented server on 127.0.0.1: sends `greeting` on connect, then answers each line it
/// reads with what `answer` holds at that moment (changeable while it runs).
struct Talker {
    addr: SocketAddr,
    answer: Arc<std::sync::Mutex<Vec<u8>>>,
    /// Close the connection after each answer.
    hang_up: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Talker {
    fn start(greeting: &[u8], answer: &[u8]) -> Talker {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        l.set_nonblocking(true).unwrap();
        let answer = Arc::new(std::sync::Mutex::new(answer.to_vec()));
        let stop = Arc::new(AtomicBool::new(false));
        let hang_up = Arc::new(AtomicBool::new(false));
        let (a, st, greeting, hu) = (
            answer.clone(),
            stop.clone(),
            greeting.to_vec(),
            hang_up.clone(),
        );
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let Ok((mut c, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                let a = a.clone();
                let hu = hu.clone();
                let greeting = greeting.clone();
                std::thread::spawn(move || {
                    let _ = c.set_nonblocking(false);
                    let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                    let _ = c.write_all(&greeting);
                    let mut buf = [0u8; 512];
                    while let Ok(n) = c.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        if buf[..n].contains(&b'\n') {
                            let reply = a.lock().unwrap().clone();
                            if c.write_all(&reply).is_err() || hu.load(Ordering::Relaxed) {
                                break;
                            }
                        }
                    }
                });
            }
        });
        Talker {
            addr,
            answer,
            hang_up,
            stop,
        }
    }

    fn answer(&self, a: &[u8]) {
        *self.answer.lock().unwrap() = a.to_vec();
    }
}

impl Drop for Talker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Parses `tcp-check` lines as the configuration would (quotes and escapes resolved).
fn rules(lines: &[&str]) -> Vec<harp::config::tcp_check::TcpCheckRule> {
    lines
        .iter()
        .map(|l| {
            let (_, line) = harp::config::lexer::lex(l).pop().unwrap();
            harp::config::tcp_check::parse_rule(&line.unwrap().words).unwrap()
        })
        .collect()
}

/// `option redis-check`: PING answered `+PONG` passes with HAProxy's text; an error reply (the
/// server then closing) fails as L7STS with the reply's first line as the info. (A server that
/// keeps the connection open after a wrong reply makes the check wait, as HAProxy's rule has no
/// `min-recv`: it then times out.)
#[test]
fn redis_check_follows_the_ping_answer() {
    let t = Talker::start(b"", b"+PONG\r\n");
    let (reg, sub) = registry(&[srv(t.addr, 1, 1, 50)], CheckKind::TcpCheck, |be| {
        be.tcp_check_rules = harp::config::tcp_check::redis_check();
        be.tcp_check_proto = true;
    });
    let mut seen = Seen::new(sub);
    let checker = harp::health::start(reg.clone()).unwrap();
    seen.until("a check", has(EventType::ServerCheck));
    let c = seen.checks()[0].clone();
    assert_eq!(
        (c.0, c.3.as_deref()),
        (CheckStatus::L7Ok, Some("Redis server is ok"))
    );
    t.hang_up.store(true, Ordering::Relaxed);
    t.answer(b"-NOAUTH Authentication required.\r\n");
    wait_state(&reg, "be/s1", OpState::Stopped);
    let last = seen_last_failed(&mut seen);
    assert_eq!(
        (last.0, last.3.as_deref()),
        (CheckStatus::L7Sts, Some("-NOAUTH Authentication required."))
    );
    checker.stop();
}

/// The last failed check seen so far.
fn seen_last_failed(seen: &mut Seen) -> (CheckStatus, u32, Option<i32>, Option<String>) {
    seen.until("a failed check", |evs| {
        evs.iter().any(|e| {
            matches!(&e.data, harp::events::EventData::Check(r) if r.result.status.outcome() == harp::model::CheckOutcome::Failed)
        })
    });
    seen.checks()
        .into_iter()
        .rev()
        .find(|c| c.0.outcome() == harp::model::CheckOutcome::Failed)
        .expect("a failed check")
}

/// Custom rules (a Redis master probe): a reply without the expected content fails with HAProxy's
/// text naming the step (the comment counts as step 1, as HAProxy numbers rules); a server that
/// never answers times out at that step.
#[test]
fn tcp_check_rules_name_the_failing_step() {
    let t = Talker::start(b"", b"# Replication\r\nrole:slave\r\n");
    // the reply is complete when the server hangs up (else the check waits for more)
    t.hang_up.store(true, Ordering::Relaxed);
    let (reg, sub) = registry(&[srv(t.addr, 1, 1, 50)], CheckKind::TcpCheck, |be| {
        be.tcp_check_rules = rules(&[
            "comment replication",
            "send info\\ replication\\r\\n",
            "expect string role:master",
        ]);
        be.timeouts.check = Some(Duration::from_millis(200));
        be.timeouts.connect = Some(Duration::from_millis(200));
    });
    let mut seen = Seen::new(sub);
    let checker = harp::health::start(reg.clone()).unwrap();
    let c = seen_last_failed(&mut seen);
    assert_eq!(
        (c.0, c.3.as_deref()),
        (
            CheckStatus::L7Rsp,
            Some("TCPCHK did not match content 'role:master' at step 3")
        )
    );
    t.answer(b"role:master\r\n");
    wait_state(&reg, "be/s1", OpState::Running);
    // an answer that never comes: the expect step times out
    t.hang_up.store(false, Ordering::Relaxed);
    t.answer(b"");
    seen.clear();
    wait_state(&reg, "be/s1", OpState::Stopped);
    let c = seen_last_failed(&mut seen);
    assert_eq!(
        (c.0, c.3.as_deref()),
        (
            CheckStatus::L7Tout,
            Some(" at step 3 of tcp-check (expect string 'role:master')")
        )
    );
    checker.stop();
}

/// `option smtpchk`: a 2xx greeting, HELO, a 2xx reply, whose text and code the check reports.
#[test]
fn smtp_check_reports_the_reply() {
    let t = Talker::start(b"220 mx ESMTP\r\n", b"250 mx.example.org\r\n");
    let (reg, sub) = registry(&[srv(t.addr, 1, 1, 50)], CheckKind::TcpCheck, |be| {
        be.tcp_check_rules = harp::config::tcp_check::smtp_check("HELO localhost");
        be.tcp_check_proto = true;
    });
    let mut seen = Seen::new(sub);
    let checker = harp::health::start(reg.clone()).unwrap();
    seen.until("a check", has(EventType::ServerCheck));
    let c = seen.checks()[0].clone();
    assert_eq!(
        (c.0, c.2, c.3.as_deref()),
        (CheckStatus::L7Ok, Some(250), Some("mx.example.org"))
    );
    t.answer(b"554 5.7.1 rejected\r\n");
    let c = seen_last_failed(&mut seen);
    assert_eq!(
        (c.0, c.2, c.3.as_deref()),
        (CheckStatus::L7Sts, Some(554), Some("5.7.1 rejected"))
    );
    checker.stop();
}

// ---------------------------------------------------------------- check-ssl

/// A real TLS server: `openssl s_server -www` (it answers `GET /` with `HTTP/1.0 200 ok`) on a
/// certificate signed by a CA made for the test; killed when dropped.
struct TlsServer {
    addr: SocketAddr,
    /// The CA's certificate.
    cert: std::path::PathBuf,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl TlsServer {
    fn start() -> TlsServer {
        let dir = tempfile::tempdir().unwrap();
        let p = |f: &str| dir.path().join(f);
        let key = p("k.pem");
        let run = |args: &[&str]| {
            let ok = std::process::Command::new("openssl")
                .current_dir(dir.path())
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .expect("openssl (make test installs it)")
                .success();
            assert!(ok, "openssl {args:?}");
        };
        // a CA, and a server certificate it signs (a CA-signed leaf, as deployments have)
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=harp-test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=harp-check",
            "-keyout",
            "k.pem",
            "-out",
            "s.csr",
        ]);
        std::fs::write(
            p("ext.cnf"),
            "basicConstraints=CA:FALSE\nsubjectAltName=DNS:harp-check\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "s.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
            "-out",
            "c.pem",
        ]);
        let (cert, leaf) = (p("ca.pem"), p("c.pem"));
        // s_server takes a free port itself (port 0) and prints it: no race with other tests
        let mut child = std::process::Command::new("openssl")
            .args(["s_server", "-www", "-accept", "127.0.0.1:0"])
            .arg("-cert")
            .arg(&leaf)
            .arg("-key")
            .arg(&key)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("openssl s_server");
        let out = child.stdout.take().expect("piped stdout");
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(out));
        let addr = loop {
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some(a) = l.strip_prefix("ACCEPT ") {
                        break a.trim().parse::<SocketAddr>().expect("s_server's address");
                    }
                }
                _ => panic!("s_server did not listen"),
            }
        };
        // what it prints later (one line per request) is drained until it exits
        std::thread::spawn(move || for _ in lines {});
        TlsServer {
            addr,
            cert,
            child,
            _dir: dir,
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `check-ssl`: an HTTP check over TLS passes with `verify none` and with `verify required`
/// against the server's own certificate as `ca-file` (chain only: no name was given); a server
/// that does not speak TLS fails as HAProxy reports it, L6RSP "SSL handshake failure".
#[test]
fn check_ssl_runs_the_http_check_over_tls() {
    let tls = TlsServer::start();
    for verify in ["none", "required"] {
        let (reg, sub) = registry(&[srv(tls.addr, 1, 1, 100)], httpchk(None), |be| {
            let p = &mut be.servers[0].params;
            p.check_ssl = true;
            p.verify = Some(verify == "required");
            p.ca_file = (verify == "required").then(|| tls.cert.clone());
            if let CheckKind::Http(h) = &mut be.check {
                h.method = "GET".into();
            }
        });
        let mut seen = Seen::new(sub);
        let checker = harp::health::start(reg.clone()).unwrap();
        seen.until("a check", has(EventType::ServerCheck));
        let c = seen.checks()[0].clone();
        assert_eq!(
            (c.0, c.2),
            (CheckStatus::L7Ok, Some(200)),
            "verify {verify}: {c:?}"
        );
        checker.stop();
    }
    let plain = Target::start(Behave::Hold);
    let (reg, sub) = registry(&[srv(plain.addr, 1, 1, 100)], CheckKind::Tcp, |be| {
        be.servers[0].params.check_ssl = true;
        be.servers[0].params.verify = Some(false);
        be.timeouts.check = Some(Duration::from_millis(300));
        be.timeouts.connect = Some(Duration::from_millis(300));
    });
    let mut seen = Seen::new(sub);
    let checker = harp::health::start(reg.clone()).unwrap();
    seen.until("a check", has(EventType::ServerCheck));
    let c = seen.checks()[0].clone();
    assert_eq!(c.0, CheckStatus::L6Tout, "{c:?}");
    checker.stop();
    let closing = Target::start(Behave::Close);
    let (reg, sub) = registry(&[srv(closing.addr, 1, 1, 100)], CheckKind::Tcp, |be| {
        be.servers[0].params.check_ssl = true;
        be.servers[0].params.verify = Some(false);
    });
    let mut seen = Seen::new(sub);
    let checker = harp::health::start(reg.clone()).unwrap();
    seen.until("a check", has(EventType::ServerCheck));
    let c = seen.checks()[0].clone();
    assert_eq!(
        (c.0, c.3.as_deref()),
        (CheckStatus::L6Rsp, Some("SSL handshake failure")),
        "{c:?}"
    );
    checker.stop();
}

/// `option mysql-check user haproxy`: the greeting, a login without password, and the server's
/// OK packet pass; an error packet fails as L7STS with the server's message.
#[test]
fn mysql_check_logs_in_as_its_user() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let deny = Arc::new(AtomicBool::new(false));
    let (d, logins) = (deny.clone(), Arc::new(std::sync::Mutex::new(Vec::new())));
    let seen_logins = logins.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let mut greeting = vec![0u8, 0, 0, 0, 0x0a];
            greeting.extend_from_slice(b"8.0.36-harp-test\0");
            greeting.extend_from_slice(&[0u8; 30]);
            greeting[0] = (greeting.len() - 4) as u8;
            let _ = c.write_all(&greeting);
            let mut buf = [0u8; 512];
            let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
            let Ok(n) = c.read(&mut buf) else { continue };
            logins.lock().unwrap().push(buf[..n].to_vec());
            let reply: Vec<u8> = if d.load(Ordering::Relaxed) {
                let mut e = vec![0u8, 0, 0, 2, 0xff, 0x15, 0x04, b'#'];
                e.extend_from_slice(b"28000Access denied for user 'haproxy'");
                e[0] = (e.len() - 4) as u8;
                e
            } else {
                vec![7, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0]
            };
            let _ = c.write_all(&reply);
        }
    });
    let (reg, sub) = registry(&[srv(addr, 1, 1, 50)], CheckKind::TcpCheck, |be| {
        be.tcp_check_rules = harp::config::tcp_check::mysql_login_check("haproxy", true);
        be.tcp_check_proto = true;
    });
    let mut seen = Seen::new(sub);
    let checker = harp::health::start(reg.clone()).unwrap();
    seen.until("a check", has(EventType::ServerCheck));
    let c = seen.checks()[0].clone();
    assert_eq!(
        (c.0, c.3.as_deref()),
        (CheckStatus::L7Ok, Some("8.0.36-harp-test")),
        "{c:?}"
    );
    let login = seen_logins.lock().unwrap()[0].clone();
    assert_eq!(
        &login[3..5],
        &[1, 0x00],
        "sequence 1, then the client flags"
    );
    assert!(login.windows(8).any(|w| w == b"haproxy\0"), "{login:?}");
    deny.store(true, Ordering::Relaxed);
    let c = seen_last_failed(&mut seen);
    assert_eq!(
        (c.0, c.3.as_deref()),
        (
            CheckStatus::L7Sts,
            Some("#28000Access denied for user 'haproxy'")
        )
    );
    checker.stop();
}

// ---------------------------------------------------------------- resolvers

/// A name server on 127.0.0.1 (UDP) answering A questions for any name with what `ip` holds
/// (NXDOMAIN when `None`), and AAAA questions with no record.
struct FakeDns {
    addr: SocketAddr,
    ip: Arc<std::sync::Mutex<Option<Vec<[u8; 4]>>>>,
    stop: Arc<AtomicBool>,
    /// Questions answered so far.
    asked: Arc<std::sync::atomic::AtomicUsize>,
}

impl FakeDns {
    fn start(ip: [u8; 4]) -> FakeDns {
        Self::start_many(vec![ip])
    }

    fn start_many(ips: Vec<[u8; 4]>) -> FakeDns {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let cur = Arc::new(std::sync::Mutex::new(Some(ips)));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, st) = (cur.clone(), stop.clone());
        let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = asked.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !st.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let q = &buf[..n];
                // the question's type sits right after its name
                let mut at = 12;
                while at < q.len() && q[at] != 0 {
                    at += 1 + q[at] as usize;
                }
                let qtype = u16::from_be_bytes([q[at + 1], q[at + 2]]);
                // the answer repeats the question, without the query's EDNS0 OPT record
                let mut a = q[..at + 5].to_vec();
                a[10] = 0;
                a[11] = 0;
                a[2] |= 0x80;
                a[3] = 0x80;
                match &*c.lock().unwrap() {
                    None => a[3] |= 3,
                    Some(ips) if qtype == 1 => {
                        a[7] = ips.len() as u8;
                        for ip in ips {
                            a.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 10, 0, 4]);
                            a.extend_from_slice(ip);
                        }
                    }
                    Some(_) => {}
                }
                let _ = sock.send_to(&a, from);
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
        FakeDns {
            addr,
            ip: cur,
            stop,
            asked,
        }
    }
}

/// A registry over `proxies` (configuration text) with a `resolvers dns` section asking `dns`,
/// its other lines (`hold`, `timeout`...) from `resolvers` (the first one indented here).
fn with_resolvers(dns: &FakeDns, resolvers: &str, proxies: &str) -> Arc<Registry> {
    let text = format!(
        "resolvers dns\n    nameserver ns1 {}\n    {resolvers}\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         {proxies}",
        dns.addr
    );
    let cfg = harp::config::parse_str("dns.cfg", &text).expect("parses");
    Registry::new(cfg, Arc::new(EventBus::new()))
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// `resolvers` at run time: a server that started without an address (`init-addr none`) is in
/// resolution maintenance until its name resolves, follows the name to a new address, and goes
/// back into maintenance once the name has failed for `hold nx`.
#[test]
fn servers_follow_their_name_through_the_resolvers() {
    let dns = FakeDns::start([127, 0, 0, 1]);
    let reg = with_resolvers(
        &dns,
        "hold valid 100ms\n    hold nx 300ms\n    timeout retry 100ms\n",
        "backend be\n    server s1 app.harp.invalid:8080 resolvers dns init-addr none resolve-prefer ipv4\n",
    );
    let s = reg.find_server("be/s1").unwrap();
    assert!(
        s.admin().has(harp::model::AdminFlags::RMAINT),
        "starts without an address"
    );
    let checker = harp::health::start(reg.clone()).unwrap();
    let wait = |what: &str, f: &dyn Fn() -> bool| {
        let end = Instant::now() + DEADLINE;
        while !f() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait("the first resolution", &|| {
        !s.admin().maint() && s.addr() == "127.0.0.1:8080".parse().unwrap()
    });
    *dns.ip.lock().unwrap() = Some(vec![[127, 0, 0, 2]]);
    wait("the new address", &|| {
        s.addr() == "127.0.0.2:8080".parse().unwrap()
    });
    *dns.ip.lock().unwrap() = None;
    wait("the resolution maintenance", &|| {
        s.admin().has(harp::model::AdminFlags::RMAINT)
    });
    assert_eq!(
        s.addr(),
        "127.0.0.2:8080".parse().unwrap(),
        "keeps its last address"
    );
    checker.stop();
}

/// A server that had an address keeps it, out of maintenance, while its name fails for less
/// than `hold nx` after the last valid answer.
#[test]
fn a_failing_name_keeps_its_server_until_hold_nx() {
    let dns = FakeDns::start([127, 0, 0, 3]);
    let reg = with_resolvers(
        &dns,
        "hold valid 50ms\n    hold nx 60s\n    timeout retry 50ms\n    timeout resolve 50ms\n",
        "backend be\n    server s1 app.harp.invalid:8080 resolvers dns init-addr none resolve-prefer ipv4\n",
    );
    let s = reg.find_server("be/s1").unwrap();
    let checker = harp::health::start(reg.clone()).unwrap();
    let end = Instant::now() + DEADLINE;
    while s.admin().maint() {
        assert!(Instant::now() < end, "never resolved");
        std::thread::sleep(Duration::from_millis(20));
    }
    *dns.ip.lock().unwrap() = None;
    // several failed resolutions (every 50 ms) well within the 60 s hold
    std::thread::sleep(Duration::from_millis(400));
    assert!(!s.admin().maint(), "kept out of maintenance within hold nx");
    assert_eq!(s.addr(), "127.0.0.3:8080".parse().unwrap());
    checker.stop();
}

/// A name libc resolved at start-up (the default `init-addr last,libc`) keeps its server out
/// of maintenance when its first queries fail: the resolution's creation counts as a valid
/// answer for `hold nx`, as in HAProxy.
#[test]
fn a_name_resolved_at_start_survives_failing_first_queries() {
    let dns = FakeDns::start([127, 0, 0, 3]);
    *dns.ip.lock().unwrap() = None;
    let reg = with_resolvers(
        &dns,
        "hold valid 30ms\n    hold nx 60s\n    timeout retry 30ms\n    timeout resolve 30ms\n",
        "backend be\n    server s1 localhost:8080 resolvers dns resolve-prefer ipv4\n",
    );
    let s = reg.find_server("be/s1").unwrap();
    let start_addr = s.addr();
    assert!(!s.admin().maint());
    let checker = harp::health::start(reg.clone()).unwrap();
    let end = Instant::now() + DEADLINE;
    while dns.asked.load(Ordering::Relaxed) < 4 {
        assert!(Instant::now() < end, "never asked");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!s.admin().maint(), "kept out of maintenance within hold nx");
    assert_eq!(s.addr(), start_addr);
    checker.stop();
}

/// `server-template` with `resolvers`: the servers share the name's addresses, one each; the
/// one left without an address waits in resolution maintenance, as in HAProxy.
#[test]
fn a_server_template_shares_the_addresses_of_its_name() {
    let dns = FakeDns::start_many(vec![[127, 0, 0, 5], [127, 0, 0, 4]]);
    let reg = with_resolvers(
        &dns,
        "hold valid 100ms\n    timeout retry 100ms\n",
        "backend be\n    server-template pod 3 app.harp.invalid:8080 resolvers dns init-addr none resolve-prefer ipv4\n",
    );
    let pod = |n: u32| reg.find_server(&format!("be/pod{n}")).unwrap();
    let checker = harp::health::start(reg.clone()).unwrap();
    let end = Instant::now() + DEADLINE;
    while pod(1).admin().maint() || pod(2).admin().maint() {
        assert!(Instant::now() < end, "the pods never resolved");
        std::thread::sleep(Duration::from_millis(20));
    }
    // one address each (which pod resolves first may vary), the third pod without
    let mut first = [pod(1).addr(), pod(2).addr()];
    first.sort();
    let want: [SocketAddr; 2] = [
        "127.0.0.4:8080".parse().unwrap(),
        "127.0.0.5:8080".parse().unwrap(),
    ];
    assert_eq!(first, want);
    let (p1, p2) = (pod(1).addr(), pod(2).addr());
    assert!(
        pod(3).admin().has(harp::model::AdminFlags::RMAINT),
        "no address for pod3"
    );
    // a new record sorting first does not move the pods that still have theirs (their health
    // and weights stay with their hosts): the pod without one takes it
    *dns.ip.lock().unwrap() = Some(vec![[127, 0, 0, 5], [127, 0, 0, 3], [127, 0, 0, 4]]);
    while pod(3).admin().maint() {
        assert!(Instant::now() < end, "pod3 never took the new address");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(pod(3).addr(), "127.0.0.3:8080".parse().unwrap());
    assert_eq!((pod(1).addr(), pod(2).addr()), (p1, p2));
    // a record gone: its pod moves to a free address or waits in maintenance
    let gone = if p1.ip() == std::net::Ipv4Addr::new(127, 0, 0, 4) {
        1
    } else {
        2
    };
    let kept = 3 - gone;
    *dns.ip.lock().unwrap() = Some(vec![[127, 0, 0, 5], [127, 0, 0, 3]]);
    while !pod(gone).admin().maint() {
        assert!(Instant::now() < end, "a pod kept a vanished address");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(pod(kept).addr(), "127.0.0.5:8080".parse().unwrap());
    assert_eq!(pod(3).addr(), "127.0.0.3:8080".parse().unwrap());
    // the three pods share one resolution of their name: about one question per `hold
    // valid` (100 ms), not three (a slow machine asks fewer, never more)
    let before = dns.asked.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(1));
    let asked = dns.asked.load(Ordering::Relaxed) - before;
    assert!(asked <= 16, "{asked} questions in a second");
    checker.stop();
}

/// `observe layer4`: connections refused by a server whose check still passes (the check goes
/// to another port) count as errors; at `error-limit` the server goes DOWN with HAProxy's
/// "Health analyze" reason (`on-error mark-down`), `hanafail` counts it, and the next check
/// (at `downinter` now that it is down, as HAProxy's srv_getinter) brings it back.
#[test]
fn observe_layer4_marks_a_refusing_server_down() {
    let (_dead, dead_port) = refusing_port();
    let live = TcpListener::bind("127.0.0.1:0").unwrap();
    let live_port = live.local_addr().unwrap().port();
    let (port, api) = (common::free_port(), common::free_port());
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    retries 0\n    server s1 127.0.0.1:{dead_port} check port {live_port} inter 30s fastinter 30s downinter 200ms rise 1 fall 1 observe layer4 error-limit 2 on-error mark-down\n"
    );
    let mut h = common::Harp::spawn(&cfg, &[]);
    h.wait_port(port);
    for _ in 0..2 {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // refused by the server: harp closes the client
        let _ = c.read(&mut [0u8; 16]);
    }
    assert!(
        h.wait_log(
            "Server be/s1 is DOWN, reason: Health analyze, info: \"Detected 2 consecutive errors, last one was: L4 unsuccessful connection\"."
        ),
        "{}",
        h.stderr()
    );
    assert_eq!(common::stat_field(api, "be,s1,", "hanafail"), "1");
    // the check (to the live port) passes at downinter, long before `inter`
    assert!(h.wait_log("Server be/s1 is UP"), "{}", h.stderr());
    drop(live);
}

/// `on-error fastinter` (the default): an `observe` alarm brings the next check forward to
/// `fastinter` while the server stays UP, instead of waiting the full `inter`.
#[test]
fn observe_alarm_brings_the_next_check_forward() {
    let (_dead, dead_port) = refusing_port();
    // the check's target counts the checks it receives
    let live = TcpListener::bind("127.0.0.1:0").unwrap();
    let live_port = live.local_addr().unwrap().port();
    let checks = Arc::new(AtomicU64::new(0));
    let counted = checks.clone();
    std::thread::spawn(move || {
        for c in live.incoming() {
            if c.is_err() {
                break;
            }
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    let (port, api) = (common::free_port(), common::free_port());
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    retries 0\n    server s1 127.0.0.1:{dead_port} disabled check port {live_port} inter 1h fastinter 100ms observe layer4 error-limit 2\n"
    );
    let mut h = common::Harp::spawn(&cfg, &[]);
    h.wait_port(port);
    // leaving maintenance checks at once; the next check would be an hour later
    assert_eq!(common::cli(api, "set server be/s1 state ready"), "\n");
    assert!(common::wait_until(DEADLINE, || checks
        .load(Ordering::SeqCst)
        >= 1));
    for _ in 0..2 {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = c.read(&mut [0u8; 16]);
    }
    assert!(
        common::wait_until(DEADLINE, || checks.load(Ordering::SeqCst) >= 2),
        "no check brought forward: {}",
        h.stderr()
    );
    assert_eq!(common::stat_field(api, "be,s1,", "hanafail"), "1");
    assert_eq!(
        common::stat_field(api, "be,s1,", "status"),
        "UP",
        "fastinter alone leaves it up"
    );
}

/// A bound socket that does not listen: connections to its port are refused, and the port
/// stays ours while the socket lives.
fn refusing_port() -> (socket2::Socket, u16) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = s.local_addr().unwrap().as_socket().unwrap().port();
    (s, port)
}

/// Plain servers resolving one name in a backend take different addresses, as HAProxy's
/// default `resolve-opts prevent-dup-ip` has them; `allow-dup-ip` lets them share one.
#[test]
fn servers_of_one_name_take_different_addresses_unless_allowed() {
    let dns = FakeDns::start_many(vec![[127, 0, 0, 5], [127, 0, 0, 4]]);
    let reg = with_resolvers(
        &dns,
        "hold valid 100ms\n    timeout retry 100ms\n",
        "backend be\n    server a app.harp.invalid:80 resolvers dns init-addr none resolve-prefer ipv4\n\
         \x20   server b app.harp.invalid:80 resolvers dns init-addr none resolve-prefer ipv4\n\
         backend dup\n    server a app.harp.invalid:80 resolvers dns init-addr none resolve-prefer ipv4 resolve-opts allow-dup-ip\n\
         \x20   server b app.harp.invalid:80 resolvers dns init-addr none resolve-prefer ipv4 resolve-opts allow-dup-ip\n",
    );
    let srv = |path: &str| reg.find_server(path).unwrap();
    let checker = harp::health::start(reg.clone()).unwrap();
    let all = ["be/a", "be/b", "dup/a", "dup/b"];
    assert!(
        common::wait_until(DEADLINE, || all.iter().all(|p| !srv(p).admin().maint())),
        "never resolved"
    );
    assert_ne!(srv("be/a").addr(), srv("be/b").addr());
    assert_eq!(srv("dup/a").addr(), srv("dup/b").addr());
    let e = harp::config::parse_str(
        "x.cfg",
        "backend be\n    server a 127.0.0.1:80 resolve-opts nope\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("unknown resolve-opts option 'nope', supported methods are 'allow-dup-ip', 'ignore-weight', and 'prevent-dup-ip'."),
        "{e}"
    );
    checker.stop();
}
