use proptest::prelude::*;

use super::*;

fn cands(ws: &[u32]) -> Vec<Candidate> {
    ws.iter()
        .map(|&w| Candidate {
            weight: w,
            conns: 0,
        })
        .collect()
}

proptest! {
    #[test]
    fn smooth_rr_exact_weighted_cycle(ws in proptest::collection::vec(0u32..8, 1..8)) {
        let total: u32 = ws.iter().sum();
        let mut rr = SmoothRr::new();
        let mut seen = vec![0u32; ws.len()];
        for _ in 0..total {
            let i = rr.pick(&ws).unwrap();
            prop_assert!(ws[i] > 0);
            seen[i] += 1;
        }
        prop_assert_eq!(seen, ws.clone());
        if total == 0 {
            prop_assert!(rr.pick(&ws).is_none());
        }
    }

    #[test]
    fn never_picks_weight_zero(
        ws in proptest::collection::vec(0u32..4, 1..10),
        conns in proptest::collection::vec(0u64..100, 10),
        r1 in any::<u64>(), r2 in any::<u64>(), h in any::<u32>(), start in 0usize..20,
    ) {
        let c: Vec<Candidate> = ws.iter().zip(&conns).map(|(&w, &n)| Candidate { weight: w, conns: n }).collect();
        let any = ws.iter().any(|&w| w > 0);
        let map = server_map(&ws).unwrap_or_default();
        for pick in [leastconn(&c, start), first(&c), random_two(&c, r1, r2), source_map(&map, h)] {
            prop_assert_eq!(pick.is_some(), any);
            if let Some(i) = pick { prop_assert!(ws[i] > 0); }
        }
        let ring = ConsistentRing::new(&ws.iter().enumerate().map(|(i, &w)| (i as u32, w)).collect::<Vec<_>>());
        if let Some(i) = ring.pick(h) { prop_assert!(ws[i] > 0); } else { prop_assert!(!any); }
    }

    #[test]
    fn leastconn_picks_a_minimum(conns in proptest::collection::vec(0u64..50, 1..10)) {
        let c: Vec<Candidate> = conns.iter().map(|&n| Candidate { weight: 1, conns: n }).collect();
        let i = leastconn(&c, 0).unwrap();
        prop_assert_eq!(conns[i], *conns.iter().min().unwrap());
    }
}

#[test]
fn random_two_prefers_less_loaded() {
    let mut c = cands(&[1, 1]);
    c[0].conns = 10;
    let mut zero = 0;
    for r in 0..100u64 {
        if random_two(&c, r, r / 2 + 1) == Some(1) {
            zero += 1;
        }
    }
    assert!(zero > 50);
}

#[test]
fn consistent_ring_moves_few_keys() {
    let a = ConsistentRing::new(&[(1, 1), (2, 1), (3, 1), (4, 1)]);
    let b = ConsistentRing::new(&[(1, 1), (2, 1), (3, 1)]);
    let mut moved = 0;
    for h in 0..10_000u32 {
        let k = h.wrapping_mul(2_654_435_761);
        let pa = a.pick(k).unwrap();
        if pa != 3 && b.pick(k) != Some(pa) {
            moved += 1;
        }
    }
    assert_eq!(moved, 0);
}

/// A retry's walk past the server it avoids: another server, the ring's own otherwise, and
/// none when every server is refused.
#[test]
fn consistent_ring_walks_past_skipped_servers() {
    let ring = ConsistentRing::new(&[(1, 1), (2, 2), (3, 1)]);
    let mut moved_to = [0; 3];
    for h in 0..3_000u32 {
        let k = h.wrapping_mul(2_654_435_761);
        let own = ring.pick(k).unwrap();
        assert_eq!(ring.pick_skipping(k, |_| false), Some(own));
        let other = ring.pick_skipping(k, |i| i == own).unwrap();
        assert_ne!(other, own);
        moved_to[other] += 1;
        assert_eq!(ring.pick_skipping(k, |_| true), None);
    }
    // the keys a server gives up spread over the others
    assert!(moved_to.iter().all(|&n| n > 0), "{moved_to:?}");
    assert_eq!(ConsistentRing::new(&[]).pick_skipping(1, |_| false), None);
}

#[test]
fn source_hashing_sends_clients_where_haproxy_does() {
    // HAProxy 2.6, `balance source` map-based, clients bound to these loopback addresses
    // (perf/README, session of 2026-11-25 13:12); servers s1.. are indexes 0..
    // (weights, [(client address, server index HAProxy chose)])
    type Seen<'a> = (&'a [u32], &'a [(&'a str, usize)]);
    let seen: [Seen; 2] = [
        (
            &[3, 5, 0, 7],
            &[
                ("127.1.0.1", 0),
                ("127.1.111.112", 3),
                ("127.1.222.223", 1),
                ("127.2.75.151", 3),
                ("127.2.186.123", 1),
                ("127.3.39.118", 3),
                ("127.3.150.201", 1),
            ],
        ),
        (
            &[1, 2, 3],
            &[
                ("127.1.15.16", 0),
                ("127.1.138.139", 2),
                ("127.2.3.7", 2),
                ("127.2.126.3", 2),
                ("127.2.249.249", 2),
                ("127.3.114.93", 2),
                ("127.3.237.212", 0),
            ],
        ),
    ];
    for (ws, clients) in seen {
        let map = server_map(ws).unwrap();
        for &(ip, want) in clients {
            let h = hash_ip(ip.parse().unwrap());
            assert_eq!(source_map(&map, h), Some(want), "{ws:?} {ip}");
        }
    }
    // `hash-type consistent`, weights 1, 2, 3 (server ids 1, 2, 3), HAProxy 2.6's choices
    let ring = ConsistentRing::new(&[(1, 1), (2, 2), (3, 3)]);
    for (ip, want) in [
        ("127.1.9.10", 2),
        ("127.1.138.139", 1),
        ("127.2.9.19", 2),
        ("127.2.138.27", 0),
        ("127.3.9.28", 2),
        ("127.3.138.165", 1),
    ] {
        let key = full_hash(hash_ip(ip.parse().unwrap()));
        assert_eq!(ring.pick(key), Some(want), "{ip}");
    }
    // `hash-type consistent sdbm` (a function, no avalanche), weights 1, 1, 1: HAProxy 2.6
    // looks the raw address up and sent all 258 clients of 127.1-3.x.x to s2
    let ring = ConsistentRing::new(&[(1, 1), (2, 1), (3, 1)]);
    for ip in ["127.1.9.10", "127.2.138.27", "127.3.255.91"] {
        assert_eq!(ring.pick(hash_ip(ip.parse().unwrap())), Some(1), "{ip}");
    }
    // the map interleaves by weight, the first declared first on ties
    assert_eq!(server_map(&[1, 2, 1]).unwrap(), [0, 1, 1, 2]);
    assert_eq!(
        server_map(&[2, 2]).unwrap(),
        [0, 1],
        "weights reduced by their gcd"
    );
    assert_eq!(server_map(&[0, 0]), None);
    assert_eq!((full_hash(0), full_hash(1)), (0xab4e_d927, 0x3486_81b6));
}
