//! What a stick table costs a connection: tracking a key (made or found), counting the session
//! and its bytes, reading a rate for an ACL, and letting the key go at the end — on one hot key
//! (every connection from one client, the worst case for the table's lock) and on 10,000 keys
//! in a table that keeps purging (size 1,000). Compare with the ~50-70 µs of CPU a proxied
//! connection costs. The `shared` cases are the same on a table a `peers` section shares
//! (every change logged for the peers, and the peers thread told through a `watch`, here with
//! a receiver that never reads).

use std::net::Ipv4Addr;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use harp::stick::config::parse;
use harp::stick::fetch::Fetch;
use harp::stick::{Counters, Key, Table};

fn table(line: &str) -> Arc<Table> {
    let words: Vec<String> = line.split_whitespace().map(String::from).collect();
    let (cfg, _) = parse(&words).expect("table config");
    Table::new("fe".into(), cfg)
}

/// One connection's life in the table: track, count the session, check the rate, count bytes,
/// release.
fn connection(t: &Arc<Table>, key: Key, rate: &Fetch) -> i64 {
    let mut c = Counters::default();
    c.track(0, t, key);
    c.session_started();
    let tables = |_: &str| Some(t.clone());
    let r = rate.value(&c, None, &tables).unwrap_or(0);
    c.add_bytes(100, 100);
    r
}

fn bench(c: &mut Criterion) {
    let store = "store conn_cur,conn_rate(10s),sess_cnt,bytes_in_cnt,bytes_out_cnt";
    let rate = Fetch::parse("sc0_conn_rate", None, "fe")
        .expect("a stick fetch")
        .expect("parses");
    let hot = table(&format!("type ip size 100k expire 30s {store}"));
    let key = Key::V4(Ipv4Addr::LOCALHOST);
    c.bench_function("stick/one hot key: track, count, read, release", |b| {
        b.iter(|| connection(&hot, key.clone(), &rate))
    });
    let churn = table(&format!("type ip size 1000 expire 30s {store}"));
    let mut i = 0u32;
    c.bench_function("stick/10k keys in 1k entries (purging)", |b| {
        b.iter(|| {
            i = (i + 1) % 10_000;
            connection(&churn, Key::V4(Ipv4Addr::from(0x0a00_0000 + i)), &rate)
        })
    });
    let tx = Arc::new(tokio::sync::Notify::new());
    let hot = table(&format!("type ip size 100k expire 30s {store}"));
    hot.share(tx.clone());
    c.bench_function(
        "stick/shared: one hot key: track, count, read, release",
        |b| b.iter(|| connection(&hot, key.clone(), &rate)),
    );
    let churn = table(&format!("type ip size 1000 expire 30s {store}"));
    churn.share(tx);
    c.bench_function("stick/shared: 10k keys in 1k entries (purging)", |b| {
        b.iter(|| {
            i = (i + 1) % 10_000;
            connection(&churn, Key::V4(Ipv4Addr::from(0x0a00_0000 + i)), &rate)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
