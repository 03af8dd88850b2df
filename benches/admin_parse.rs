//! Runtime API costs: parsing command lines (scripts fire thousands of `set server` lines) and
//! rendering `show stat` / `show servers state` for a 1,000-server backend (exporters poll it).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use harp::admin::parse::{parse, split_line};
use harp::admin::{execute, InfoHook, SessionCtx};
use harp::config::AccessLevel;
use harp::events::EventBus;
use harp::model::Registry;

fn big_registry(servers: usize) -> Arc<Registry> {
    let mut s = String::from(
        "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\nfrontend fe\n    bind 127.0.0.1:8080\n    default_backend be\n\nbackend be\n    balance roundrobin\n",
    );
    for i in 0..servers {
        s.push_str(&format!(
            "    server s{i} 127.0.{}.{}:{} check weight {}\n",
            i / 250,
            i % 250 + 1,
            10000 + i,
            i % 256 + 1
        ));
    }
    let cfg = harp::config::parse_str("bench.cfg", &s).expect("bench config");
    Registry::new(cfg, Arc::new(EventBus::new()))
}

fn bench(c: &mut Criterion) {
    let lines: [&[u8]; 4] = [
        b"set server test/webserver1 state maint",
        b"show stat typed",
        b"set weight be/s10 50%; get weight be/s10; show servers state be",
        b"add server be/dyn 127.0.0.1:8080 weight 10 check inter 2s rise 2 fall 3",
    ];
    c.bench_function("admin_parse_lines", |b| {
        b.iter(|| {
            lines
                .iter()
                .flat_map(|l| split_line(l))
                .map(|w| std::hint::black_box(parse(&w)))
                .fold(0usize, |n, _| n + 1)
        })
    });
    let garbage = vec![b'x'; 64 * 1024];
    c.bench_function("admin_parse_64k_garbage", |b| {
        b.iter(|| split_line(&garbage).len())
    });
    let reg = big_registry(1000);
    let info: InfoHook = Arc::new(Vec::new);
    for cmd in ["show stat", "show servers state", "show stat typed"] {
        let words = split_line(cmd.as_bytes()).remove(0);
        c.bench_function(
            &format!("admin_{}_1000_servers", cmd.replace(' ', "_")),
            |b| {
                b.iter(|| {
                    let mut ctx = SessionCtx {
                        level: AccessLevel::Admin,
                    };
                    execute(&reg, &info, &mut ctx, parse(&words)).0.len()
                })
            },
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
