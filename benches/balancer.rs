//! One balancing decision per algorithm at 1, 10 and 1,000 servers: a pick runs for every new
//! connection, so it must stay far below the ~70 µs of CPU a proxied connection costs.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use harp::model::lb::{self, Candidate, ConsistentRing, SmoothRr};

fn cands(n: usize) -> Vec<Candidate> {
    (0..n)
        .map(|i| Candidate {
            weight: (i % 7 + 1) as u32,
            conns: (i * 13 % 31) as u64,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("balancer_pick");
    for n in [1usize, 10, 1000] {
        let cs = cands(n);
        let ws: Vec<u32> = cs.iter().map(|c| c.weight).collect();
        let mut rr = SmoothRr::new();
        g.bench_with_input(BenchmarkId::new("roundrobin", n), &n, |b, _| {
            b.iter(|| rr.pick(&ws))
        });
        let mut start = 0usize;
        g.bench_with_input(BenchmarkId::new("leastconn", n), &n, |b, _| {
            b.iter(|| {
                start = start.wrapping_add(1);
                lb::leastconn(&cs, start % n)
            })
        });
        g.bench_with_input(BenchmarkId::new("first", n), &n, |b, _| {
            b.iter(|| lb::first(&cs))
        });
        let mut r = 0x1234_5678u64;
        g.bench_with_input(BenchmarkId::new("random", n), &n, |b, _| {
            b.iter(|| {
                r = r.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                lb::random_two(&cs, r, r.rotate_left(29))
            })
        });
        let ip: std::net::IpAddr = "10.1.2.3".parse().unwrap_or([0, 0, 0, 0].into());
        // the map is built once per weight change (cached per worker), a pick is a lookup
        let map = lb::server_map(&ws).unwrap_or_default();
        g.bench_with_input(BenchmarkId::new("source_map", n), &n, |b, _| {
            b.iter(|| lb::source_map(&map, lb::hash_ip(ip)))
        });
        let ids: Vec<(u32, u32)> = ws.iter().enumerate().map(|(i, &w)| (i as u32, w)).collect();
        let ring = ConsistentRing::new(&ids);
        g.bench_with_input(BenchmarkId::new("source_consistent", n), &n, |b, _| {
            b.iter(|| ring.pick(lb::hash_ip(ip)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
