//! The rules a connection meets: an SNI read from a ClientHello, then a blocklist of 1, 100
//! and 10,000 networks and a `use_backend` on the name, or a dynamic `use_backend` whose name
//! a map file of 1, 100 and 10,000 server names gives. They run once per new connection (the
//! content rules once per read while they wait), against the ~70 µs of CPU a proxied
//! connection costs.

use std::net::SocketAddr;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use harp::rules::hello::{self, sample_client_hello};
use harp::rules::{Env, Phase, ProxyStat, Rules, ServerStat};

/// A session as the rules see it: an address and the request's first bytes.
struct Session {
    src: SocketAddr,
    content: Vec<u8>,
}

impl Env for Session {
    fn src(&self) -> Option<SocketAddr> {
        Some(self.src)
    }
    fn dst(&self) -> Option<SocketAddr> {
        None
    }
    fn content(&self) -> Option<&[u8]> {
        Some(&self.content)
    }
    fn is_final(&self) -> bool {
        false
    }
    fn proxy_stat(&self, _: &str, _: ProxyStat) -> Option<i64> {
        Some(1)
    }
    fn server_stat(&self, _: &str, _: &str, _: ServerStat) -> Option<i64> {
        Some(1)
    }
}

fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(String::from).collect()
}

/// `tcp-request connection reject` on `n` networks given inline, plus SNI routing.
fn rules(n: usize) -> Rules {
    let mut r = Rules::default();
    let nets: Vec<String> = (0..n)
        .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
        .collect();
    let acl = format!("blocked src {}", nets.join(" "));
    r.parse_acl(&words(&acl), "fe").expect("valid acl");
    for line in [
        "tcp-request connection reject if blocked",
        "tcp-request inspect-delay 5s",
        "tcp-request content accept if { req.ssl_hello_type 1 }",
    ] {
        r.parse_tcp_request(&words(line), "fe", "frontend", true)
            .expect("valid rule");
    }
    for line in [
        "use_backend api if { req.ssl_sni -i api.example.com }",
        "use_backend www if { req.ssl_sni -m end .example.com }",
    ] {
        r.parse_use_backend(&words(line), "fe").expect("valid rule");
    }
    r
}

fn bench(c: &mut Criterion) {
    let hello_bytes = sample_client_hello("www.example.com");
    c.bench_function("rules/sni_from_client_hello", |b| {
        b.iter(|| hello::sni(std::hint::black_box(&hello_bytes)))
    });
    let mut g = c.benchmark_group("rules/connection");
    for n in [1usize, 100, 10_000] {
        let r = rules(n);
        let s = Session {
            src: "192.0.2.7:40000".parse().expect("address"),
            content: hello_bytes.clone(),
        };
        // a connection that is not blocked: every network is compared
        g.bench_with_input(BenchmarkId::new("blocklist_miss", n), &n, |b, _| {
            b.iter(|| r.run(Phase::Connection, &s))
        });
        g.bench_with_input(
            BenchmarkId::new("content_then_use_backend", n),
            &n,
            |b, _| b.iter(|| (r.run(Phase::Content, &s), r.backend(&s).map(|n| n.len()))),
        );
    }
    g.finish();
    // the Runtime API's `add acl`: the workers load a new snapshot of the whole list, so one
    // entry costs a copy of the list (a payload adds its lines in one copy)
    let mut g = c.benchmark_group("rules/add_acl_entry");
    let dir = tempfile::tempdir().expect("tempdir");
    for n in [100usize, 10_000] {
        let f = dir.path().join(format!("block{n}.lst"));
        let text: String = (0..n)
            .map(|i| format!("10.{}.{}.0/24\n", i / 256, i % 256))
            .collect();
        std::fs::write(&f, text).expect("write list");
        let mut r = Rules::default();
        r.parse_acl(&words(&format!("blocked src -f {}", f.display())), "fe")
            .expect("valid acl");
        let group: Vec<_> = r.acls.refs().into_iter().take(1).cloned().collect();
        g.bench_with_input(BenchmarkId::new("add_then_del", n), &n, |b, _| {
            b.iter(|| {
                harp::rules::patref::group_add(&group, &[("192.0.2.1", None)]).expect("valid");
                harp::rules::patref::group_remove(
                    &group,
                    harp::rules::patref::Target::Key("192.0.2.1"),
                )
            })
        });
    }
    g.finish();
    let mut g = c.benchmark_group("rules/map_use_backend");
    for n in [1usize, 100, 10_000] {
        let f = dir.path().join(format!("sni{n}.map"));
        let text: String = (0..n)
            .map(|i| format!("h{i}.example.com be{}\n", i % 7))
            .chain(std::iter::once("www.example.com be_www\n".to_string()))
            .collect();
        std::fs::write(&f, text).expect("write map");
        let mut r = Rules::default();
        let line = format!(
            "use_backend %[req.ssl_sni,lower,map({},be_default)]",
            f.display()
        );
        r.parse_use_backend(&words(&line), "fe")
            .expect("valid rule");
        let s = Session {
            src: "192.0.2.7:40000".parse().expect("address"),
            content: hello_bytes.clone(),
        };
        // the name is the map's last entry: a scan would see every other one first
        g.bench_with_input(BenchmarkId::new("sni_hit", n), &n, |b, _| {
            b.iter(|| r.backend(&s).map(|n| n.len()))
        });
    }
    g.finish();
}

/// A session's log line: `option tcplog`'s format rendered through the log-format engine, and
/// a custom format with samples (against the ~70 µs of CPU a logged connection costs).
fn log_line(c: &mut Criterion) {
    use harp::rules::logformat::{Facts, LogFormat, Use, TCPLOG};
    let mut g = c.benchmark_group("log_line");
    let s = Session {
        src: "192.0.2.7:40000".parse().expect("address"),
        content: Vec::new(),
    };
    let facts = Facts {
        client: Some(s.src),
        accepted: Some(std::time::SystemTime::now()),
        frontend: "fe",
        backend: "be",
        server: "s1",
        tw: 0,
        tc: 1,
        tt: 25,
        bytes_out: 1234,
        bytes_in: 99,
        ts: *b"--",
        conns: [1, 1, 1, 1],
        ..Facts::default()
    };
    let site = (String::new(), 0);
    let tcplog = LogFormat::parse(TCPLOG, "fe", &site, Use::Log).expect("format");
    g.bench_function("tcplog_format", |b| {
        b.iter(|| tcplog.render(&facts, &s).len())
    });
    let custom = LogFormat::parse(
        "%ci:%cp %f %b/%s %{+Q}[src,ipmask(24)] %[str(x),upper] %Tt %B %U %ts",
        "fe",
        &site,
        Use::Log,
    )
    .expect("format");
    g.bench_function("custom_with_samples", |b| {
        b.iter(|| custom.render(&facts, &s).len())
    });
    g.finish();
}

criterion_group!(benches, bench, log_line);
criterion_main!(benches);
