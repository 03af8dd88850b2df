//! Config parse time of a 1,000-server configuration (operators with big generated configs
//! restart and `-c` often; parsing must stay far below a second).

use criterion::{criterion_group, criterion_main, Criterion};

fn big_config(servers: usize) -> String {
    let mut s = String::from(
        "global\n    stats socket ipv4@127.0.0.1:9999 level admin\n\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\nfrontend fe\n    bind 127.0.0.1:8080\n    default_backend be\n\nbackend be\n    balance roundrobin\n    option log-health-checks\n",
    );
    for i in 0..servers {
        s.push_str(&format!(
            "    server s{i} 127.0.{}.{}:{} check inter 2s rise 2 fall 3 weight {}\n",
            i / 250,
            i % 250 + 1,
            10000 + i,
            i % 256 + 1
        ));
    }
    s
}

fn bench(c: &mut Criterion) {
    let text = big_config(1000);
    c.bench_function("config_parse_1000_servers", |b| {
        b.iter(|| harp::config::parse_str("bench.cfg", &text).map(|c| c.proxies.len()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
