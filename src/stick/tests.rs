use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use super::config::parse;
use super::data::{DataType, FreqCtr, Schema};
use super::fetch::{Fetch, Op, Source};
use super::key::{Key, KeySample, KeyType};
use super::table::Table;
use super::Counters;

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

fn table(line: &str) -> Arc<Table> {
    Table::new("t".into(), parse(&words(line)).expect("config").0)
}

fn v4(s: &str) -> Key {
    Key::V4(s.parse().expect("ip"))
}

#[test]
fn freq_ctr_weighs_the_previous_period() {
    let mut f = FreqCtr::default();
    f.add(10, 1000, 5000);
    assert_eq!(f.read(1000, 5000), 10);
    // half-way through the next period: all of this one's, half of the previous one's
    f.add(4, 1000, 6000);
    assert_eq!(f.read(1000, 6500), 4 + 5);
    // two periods later nothing is left
    assert_eq!(f.read(1000, 8000), 0);
    // a period after the last count, it counts as the previous one
    assert_eq!(f.read(1000, 7250), 3);
    // flapping correction: a lone previous event reads 1 throughout
    let mut g = FreqCtr::default();
    g.add(1, 1000, 5000);
    assert_eq!(g.read(1000, 6900), 1);
}

#[test]
fn store_keeps_haproxy_order_and_checks_periods() {
    let mut s = Schema::default();
    s.parse_store("conn_rate(10s),gpc0").expect("store");
    s.parse_store("conn_cur").expect("store");
    let names: Vec<_> = s.types().iter().map(|(t, p)| (t.name(), *p)).collect();
    assert_eq!(names, [("gpc0", 0), ("conn_rate", 10_000), ("conn_cur", 0)]);
    assert_eq!(
        s.parse_store("conn_rate").unwrap_err(),
        "missing argument to store option 'conn_rate'."
    );
    assert_eq!(
        s.parse_store("conn_cnt(1s)").unwrap_err(),
        "unexpected argument to store option 'conn_cnt'."
    );
    assert_eq!(
        s.parse_store("nope").unwrap_err(),
        "unknown store option 'nope'."
    );
    assert_eq!(
        s.parse_store("gpc0").expect("a warning"),
        ["store option 'gpc0' already enabled, ignored."]
    );
    assert!(s
        .parse_store("gpc(3)")
        .unwrap_err()
        .contains("not supported"));
    // `server_name` is HAProxy's other name of `server_key`
    s.parse_store("server_name,server_id").expect("store");
    assert!(s.has(DataType::ServerKey) && s.has(DataType::ServerId));
    assert_eq!(s.types()[0].0, DataType::ServerId, "printed first");
}

#[test]
fn config_line_errors() {
    assert!(parse(&words("size 10"))
        .unwrap_err()
        .contains("missing type"));
    assert!(parse(&words("type ip"))
        .unwrap_err()
        .contains("missing size"));
    assert!(parse(&words("type foo size 1"))
        .unwrap_err()
        .contains("unknown type"));
    assert!(parse(&words("type ip size 1 srvkey addr"))
        .unwrap_err()
        .contains("not supported"));
    let shared = parse(&words("type ip size 1 peers p")).expect("peers").0;
    assert_eq!(shared.peers.as_deref(), Some("p"));
    let c = parse(&words(
        "type string len 8 size 1k expire 30s nopurge store gpc0",
    ))
    .expect("ok")
    .0;
    assert_eq!(c.key, KeyType::String(8));
    assert_eq!(c.size, 1024);
    assert_eq!(c.expire, Some(Duration::from_secs(30)));
    assert!(c.nopurge);
}

#[test]
fn keys_from_samples_and_cli() {
    let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
    assert_eq!(
        KeyType::Ip.key(&KeySample::Ip(mapped)),
        Some(v4("10.0.0.1"))
    );
    assert_eq!(
        KeyType::Ip.key(&KeySample::Ip("::1".parse().expect("ip"))),
        None
    );
    assert_eq!(
        KeyType::String(3).key(&KeySample::Bytes(b"abcdef")),
        Some(Key::Bytes(b"abc".to_vec()))
    );
    assert_eq!(
        KeyType::Binary(4).parse_cli("0aFF"),
        Ok(Key::Bytes(vec![10, 255, 0, 0]))
    );
    assert_eq!(Key::Bytes(vec![10, 255]).show(KeyType::Binary(2)), "0AFF");
    assert!(KeyType::Ip.parse_cli("nope").is_err());
    assert_eq!(KeyType::Integer.parse_cli("42"), Ok(Key::Int(42)));
}

#[test]
fn tracking_counts_and_releases() {
    let t = table("type ip size 10 expire 10s store conn_cnt,conn_cur,conn_rate(10s),sess_cnt,gpc0,bytes_in_cnt");
    let mut c = Counters::default();
    assert!(c.track(0, &t, v4("127.0.0.1")));
    // a counter already tracking ignores another rule
    assert!(!c.track(0, &t, v4("127.0.0.2")));
    assert!(c.track(1, &t, v4("127.0.0.1")));
    c.session_started();
    c.inc_gpc(0, 0);
    c.add_bytes(100, 5);
    let get = |ty| {
        t.peek(&v4("127.0.0.1"), |en, s, now| en.get(s, ty, now))
            .flatten()
    };
    assert_eq!(get(DataType::ConnCnt), Some(2));
    assert_eq!(get(DataType::ConnCur), Some(2));
    assert_eq!(get(DataType::ConnRate), Some(2));
    // two counters on one entry count the session twice, as HAProxy's do
    assert_eq!(get(DataType::SessCnt), Some(2));
    assert_eq!(get(DataType::Gpc0), Some(1));
    assert_eq!(get(DataType::BytesInCnt), Some(200));
    assert_eq!(get(DataType::SessRate), None);
    drop(c);
    assert_eq!(get(DataType::ConnCur), Some(0));
    assert_eq!(get(DataType::ConnCnt), Some(2));
    let d = t.dump(|_, _, _, _| true);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].key, "127.0.0.1");
    assert_eq!(d[0].refs, 0);
    assert!(d[0].exp > 9_000 && d[0].exp <= 10_000, "{}", d[0].exp);
}

#[test]
fn a_full_table_purges_unused_entries_unless_nopurge() {
    let t = table("type integer size 4 store conn_cnt");
    let mut held = Counters::default();
    assert!(held.track(0, &t, Key::Int(0)));
    for i in 1..10 {
        assert!(t.with_entry(&Key::Int(i), true, |_, _, _| ()).is_some());
        assert!(t.used() <= 4);
    }
    // the entry in use survives the purges
    assert!(t.peek(&Key::Int(0), |_, _, _| ()).is_some());
    let n = table("type integer size 2 nopurge store conn_cnt");
    assert!(n.with_entry(&Key::Int(1), true, |_, _, _| ()).is_some());
    assert!(n.with_entry(&Key::Int(2), true, |_, _, _| ()).is_some());
    assert!(n.with_entry(&Key::Int(3), true, |_, _, _| ()).is_none());
    // clear leaves entries in use
    t.clear(|_, _, _, _| true);
    assert_eq!(t.used(), 1);
}

#[test]
fn fetches_read_tracked_and_source_entries() {
    let t = table("type ip size 10 store conn_cur,gpc0");
    let tables = |name: &str| (name == "t").then(|| t.clone());
    let src: IpAddr = Ipv4Addr::LOCALHOST.into();
    let f = |s: &str, a: Option<&str>| Fetch::parse(s, a, "t").expect("known").expect("parses");
    let mut c = Counters::default();
    assert_eq!(
        f("sc_tracked", Some("0")).value(&c, Some(src), &tables),
        Some(0)
    );
    assert_eq!(f("sc0_conn_cur", None).value(&c, Some(src), &tables), None);
    assert_eq!(
        f("src_conn_cur", None).value(&c, Some(src), &tables),
        Some(0)
    );
    assert!(c.track(0, &t, v4("127.0.0.1")));
    assert_eq!(
        f("sc0_conn_cur", None).value(&c, Some(src), &tables),
        Some(1)
    );
    assert_eq!(
        f("sc_conn_cur", Some("0,t")).value(&c, Some(src), &tables),
        Some(1)
    );
    assert_eq!(
        f("src_inc_gpc0", None).value(&c, Some(src), &tables),
        Some(1)
    );
    assert_eq!(
        f("sc0_get_gpc0", None).value(&c, Some(src), &tables),
        Some(1)
    );
    // not stored: no sample
    assert_eq!(f("sc0_conn_rate", None).value(&c, Some(src), &tables), None);
    assert_eq!(f("table_cnt", None).value(&c, Some(src), &tables), Some(1));
    assert_eq!(f("table_avl", None).value(&c, Some(src), &tables), Some(9));
    assert!(Fetch::parse("sc3_conn_cur", None, "t").is_none());
    assert!(Fetch::parse("sc_conn_cur", Some("7"), "t")
        .expect("known")
        .is_err());
    assert_eq!(
        f("src_conn_cnt", Some("other")),
        Fetch::Counter {
            from: Source::Src,
            op: Op::Get(DataType::ConnCnt),
            table: Some("other".into())
        }
    );
}

#[test]
fn a_full_table_without_expire_purges_the_least_recently_touched() {
    let t = table("type integer size 3 store gpc0");
    for i in 0..3 {
        assert!(t.with_entry(&Key::Int(i), true, |_, _, _| ()).is_some());
        std::thread::sleep(Duration::from_millis(2));
    }
    // 0 touched again: 1 is now the oldest
    assert!(t.with_entry(&Key::Int(0), false, |_, _, _| ()).is_some());
    assert!(t.with_entry(&Key::Int(9), true, |_, _, _| ()).is_some());
    assert!(
        t.peek(&Key::Int(1), |_, _, _| ()).is_none(),
        "the oldest went"
    );
    for k in [0, 2, 9] {
        assert!(t.peek(&Key::Int(k), |_, _, _| ()).is_some(), "{k} stays");
    }
}

#[test]
fn a_new_rate_starts_its_period_at_its_first_event() {
    let t = table("type integer size 3 store conn_rate(1h)");
    for _ in 0..20 {
        t.with_entry(&Key::Int(1), true, |en, s, now| {
            en.add(s, DataType::ConnRate, 1, now)
        });
    }
    let r = t.peek(&Key::Int(1), |en, s, now| {
        en.get(s, DataType::ConnRate, now)
    });
    assert_eq!(r, Some(Some(20)));
}

#[test]
fn expire_zero_is_never() {
    assert_eq!(
        parse(&words("type ip size 1 expire 0"))
            .expect("ok")
            .0
            .expire,
        None
    );
}

#[test]
fn entries_expire_once_unused_and_not_before() {
    let t = table("type integer size 10 expire 30ms store conn_cur");
    let mut c = Counters::default();
    assert!(c.track(0, &t, Key::Int(1)));
    assert!(t.with_entry(&Key::Int(2), true, |_, _, _| ()).is_some());
    std::thread::sleep(Duration::from_millis(60));
    // the tracked one stays however old; the other one is gone
    assert_eq!(t.used(), 1);
    drop(c);
    assert_eq!(t.used(), 1, "released: expires 30 ms from now");
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(t.used(), 0);
}

#[test]
fn table_converters_read_presence_values_expiry_and_idleness() {
    use super::fetch::{table_read, TableRead};
    let t = table("type integer size 10 expire 10s store gpc0");
    let k = Key::Int(7);
    assert_eq!(table_read(&t, &k, TableRead::Present), Some(0));
    assert_eq!(
        table_read(&t, &k, TableRead::Value(Op::Get(DataType::Gpc0))),
        Some(0)
    );
    assert_eq!(table_read(&t, &k, TableRead::Expire), None);
    t.with_entry(&k, true, |en, s, now| en.add(s, DataType::Gpc0, 3, now));
    assert_eq!(table_read(&t, &k, TableRead::Present), Some(1));
    assert_eq!(
        table_read(&t, &k, TableRead::Value(Op::Get(DataType::Gpc0))),
        Some(3)
    );
    let exp = table_read(&t, &k, TableRead::Expire).expect("present");
    assert!((9_000..=10_000).contains(&exp), "{exp}");
    let idle = table_read(&t, &k, TableRead::Idle).expect("present");
    assert!(idle < 1_000, "{idle}");
}

/// The keys `changes` walks after `after` (local ones only unless `all`).
fn changed(t: &Table, after: u64, all: bool) -> Vec<Key> {
    let mut v = Vec::new();
    t.changes(after, 100, all, |_, k, _, _, _, _| v.push(k.clone()));
    v
}

#[test]
fn a_shared_table_logs_local_changes_in_order_and_learnt_ones_apart() {
    let t = table("type ip size 10 expire 30s store gpc0 peers p");
    // not shared yet: nothing is logged
    t.with_entry(&v4("10.0.0.9"), true, |_, _, _| ());
    assert_eq!(t.last_change(), 0);
    let notify = Arc::new(tokio::sync::Notify::new());
    t.share(notify.clone());
    t.with_entry(&v4("10.0.0.1"), true, |e, s, n| {
        e.add(s, DataType::Gpc0, 1, n)
    });
    t.with_entry(&v4("10.0.0.2"), true, |_, _, _| ());
    // peers are told: a permit waits for the peers thread
    let told = notify.notified();
    let mut told = std::pin::pin!(told);
    assert!(told.as_mut().enable(), "peers are told");
    // a learnt entry is logged (a lesson sends it) but is not a local change
    t.learn(&v4("10.0.0.3"), Some(5_000), |e, s, n| {
        e.set(s, DataType::Gpc0, 7, n)
    });
    assert_eq!(t.last_change(), 3);
    assert_eq!(changed(&t, 0, false), [v4("10.0.0.1"), v4("10.0.0.2")]);
    assert_eq!(changed(&t, 0, true).len(), 3);
    // touched again, an entry moves to the end of the log
    t.with_entry(&v4("10.0.0.1"), true, |_, _, _| ());
    assert_eq!(changed(&t, 2, false), [v4("10.0.0.1")]);
    // the learnt entry lives as long as the peer said, not the table's 30 s
    let left = t.peek(&v4("10.0.0.3"), |_, _, _| ()).map(|_| ());
    assert!(left.is_some());
    let dumped = t.dump(|k, _, _, _| *k == v4("10.0.0.3"));
    assert!(
        dumped[0].exp <= 5_000 && dumped[0].exp > 4_000,
        "{dumped:?}"
    );
    // cleared entries leave the log
    t.clear(|_, _, _, _| true);
    assert!(changed(&t, 0, true).is_empty());
}

#[test]
fn a_push_walk_behind_many_learnt_entries_stops_early_and_goes_on_from_there() {
    let t = table("type integer size 10k expire 30s store gpc0 peers p");
    t.share(Arc::new(tokio::sync::Notify::new()));
    for i in 0..1000 {
        t.learn(&Key::Int(i), None, |_, _, _| ());
    }
    t.with_entry(&Key::Int(5000), true, |_, _, _| ());
    // 10 wanted: at most 40 looked at under the lock, none of them local
    let mut sent = 0;
    let last = t.changes(0, 10, false, |_, _, _, _, _, _| sent += 1);
    assert_eq!((sent, last), (0, 40));
    // called again and again from there, it reaches the local change
    let mut from = last;
    let mut found = Vec::new();
    while from < t.last_change() {
        from = t.changes(from, 10, false, |_, k, _, _, _, _| found.push(k.clone()));
    }
    assert_eq!(found, [Key::Int(5000)]);
}

#[test]
fn a_walk_to_the_end_of_the_log_counts_the_changes_of_entries_gone() {
    let t = table("type ip size 10 expire 30s store gpc0 peers p");
    t.share(Arc::new(tokio::sync::Notify::new()));
    t.with_entry(&v4("10.0.0.1"), true, |_, _, _| ());
    t.with_entry(&v4("10.0.0.2"), true, |_, _, _| ());
    t.clear(|k, _, _, _| *k == v4("10.0.0.2"));
    // the newest change's entry is gone: a push is still caught up at its number
    assert_eq!(t.last_change(), 2);
    assert_eq!(t.changes(1, 10, false, |_, _, _, _, _, _| ()), 2);
}
