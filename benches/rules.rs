//! The rules a connection meets: an SNI read from a ClientHello, then a blocklist of 1, 100
//! and 10,000 networks and a `use_backend` on the name. They run once per new connection (the
//! content rules once per read while they wait), against the ~70 µs of CPU a proxied
//! connection costs.

use std::net::SocketAddr;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use harp::rules::{hello, Env, Phase, ProxyStat, Rules, ServerStat};

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

/// A TLS record with a ClientHello for `name`, a few extensions before the SNI as browsers
/// send them.
fn client_hello(name: &str) -> Vec<u8> {
    let n = name.as_bytes();
    let mut ext = Vec::new();
    for kind in [0x0017u16, 0xff01, 0x000a, 0x000b, 0x0023] {
        ext.extend_from_slice(&kind.to_be_bytes());
        ext.extend_from_slice(&8u16.to_be_bytes());
        ext.extend_from_slice(&[0; 8]);
    }
    ext.extend_from_slice(&[0, 0]);
    ext.extend_from_slice(&((n.len() + 5) as u16).to_be_bytes());
    ext.extend_from_slice(&((n.len() + 3) as u16).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(n.len() as u16).to_be_bytes());
    ext.extend_from_slice(n);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(32);
    body.extend_from_slice(&[9; 32]);
    body.extend_from_slice(&32u16.to_be_bytes());
    body.extend_from_slice(&[0x13; 32]);
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
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
    let hello_bytes = client_hello("www.example.com");
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
            |b, _| b.iter(|| (r.run(Phase::Content, &s), r.backend(&s).map(str::len))),
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
