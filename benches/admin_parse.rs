//! Runtime API line parsing (split on `;`, words, command): monitoring scripts poll the socket
//! often, and parsing must cost next to nothing compared with rendering the reply.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use harp::admin::parse;

fn parse_line(line: &str) -> usize {
    parse::split_commands(line)
        .iter()
        .filter_map(|c| parse::parse_command(c))
        .count()
}

fn bench(c: &mut Criterion) {
    c.bench_function("admin_parse_set_server_state", |b| {
        b.iter(|| parse_line(black_box("set server test/webserver1 state maint")))
    });
    c.bench_function("admin_parse_show_stat_typed", |b| {
        b.iter(|| parse_line(black_box("show stat test 4 -1 typed up")))
    });
    let many = "set server be/s1 weight 10;".repeat(50);
    c.bench_function("admin_parse_50_commands_line", |b| {
        b.iter(|| parse_line(black_box(&many)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
