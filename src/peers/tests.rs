//! The protocol's bytes, checked against what HAProxy 2.6 sends.

use super::update::{Dict, Update, WireValue};
use super::wire::*;
use crate::stick::{Key, KeyType};

fn varint(v: u64) -> Vec<u8> {
    let mut b = Vec::new();
    put_varint(&mut b, v);
    b
}

#[test]
fn varints_match_haproxy_boundaries() {
    assert_eq!(varint(0), [0]);
    assert_eq!(varint(239), [239]);
    assert_eq!(varint(240), [0xf0, 0]);
    // the first 3-byte value is 2288 (PEER_ENC_3BYTES_MIN)
    assert_eq!(varint(2287).len(), 2);
    assert_eq!(varint(2288).len(), 3);
    assert_eq!(varint(264_432).len(), 4);
    for v in [
        0u64,
        1,
        239,
        240,
        241,
        1000,
        2287,
        2288,
        65_535,
        1 << 32,
        u64::MAX,
    ] {
        let b = varint(v);
        let mut r = Reader::new(&b);
        assert_eq!(r.varint(), Ok(v), "{v}");
        assert!(r.is_empty());
    }
    assert!(Reader::new(&[0xf5]).varint().is_err());
}

#[test]
fn frames_split_and_wait_for_more() {
    let f = frame(CLASS_TABLE, STKT_ACK, &[1, 0, 0, 0, 7]);
    assert_eq!(f, [10, 0x84, 5, 1, 0, 0, 0, 7]);
    match parse_frame(&f).unwrap() {
        Parsed::Frame(fr, n) => {
            assert_eq!(n, 8);
            assert_eq!(fr.body, &[1, 0, 0, 0, 7]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(parse_frame(&f[..5]).unwrap(), Parsed::Partial);
    assert_eq!(
        parse_frame(&[0, 4, 10]).unwrap(),
        Parsed::Frame(
            Frame {
                class: 0,
                kind: 4,
                body: &[]
            },
            2
        )
    );
    let mut big = vec![10, 0x80];
    put_varint(&mut big, 1 << 20);
    assert_eq!(parse_frame(&big).unwrap(), Parsed::TooLarge);
}

#[test]
fn definitions_round_trip_with_rate_periods() {
    let d = Define {
        id: 1,
        name: b"st".to_vec(),
        key_type: 4,
        key_size: 4,
        data: (1 << 0) | (1 << 4) | (1 << 5),
        expire: Some(30_000),
        params: vec![(5, vec![10_000])],
    };
    let b = d.encode();
    assert_eq!(Define::decode(&b).unwrap(), d);
    // an HAProxy 1.x definition stops after the data bits
    let old = &b[..b.len() - 5];
    let o = Define::decode(old).unwrap();
    assert_eq!(o.expire, None);
}

#[test]
fn updates_round_trip_and_names_go_once() {
    let d = Define {
        id: 1,
        name: b"st".to_vec(),
        key_type: 4,
        key_size: 4,
        data: (1 << 0) | (1 << 5) | (1 << 19),
        expire: Some(30_000),
        params: vec![(5, vec![10_000])],
    };
    let u = Update {
        id: Some(7),
        expire: Some(29_000),
        key: Key::V4("127.0.0.1".parse().unwrap()),
        values: vec![
            (0, WireValue::Int(3)),
            (
                5,
                WireValue::Freq {
                    age: 12,
                    curr: 2,
                    prev: 0,
                },
            ),
            (19, WireValue::Text(Some("web1".into()))),
        ],
    };
    let mut tx = Dict::default();
    let mut rx = Dict::default();
    let (kind, body) = u.encode(KeyType::Ip, true, &mut tx);
    assert_eq!(kind, STKT_UPDATE_TIMED);
    assert_eq!(&body[..12], &[0, 0, 0, 7, 0, 0, 0x71, 0x48, 127, 0, 0, 1]);
    assert_eq!(
        Update::decode(kind, &body, &d, KeyType::Ip, &mut rx).unwrap(),
        u
    );
    // the second time the name is sent by number only
    let (kind2, body2) = u.encode(KeyType::Ip, true, &mut tx);
    assert!(body2.ends_with(&[1, 1]));
    assert_eq!(
        Update::decode(kind2, &body2, &d, KeyType::Ip, &mut rx).unwrap(),
        u
    );
}

#[test]
fn string_keys_carry_their_length_and_integer_keys_are_big_endian() {
    let mut b = Vec::new();
    put_key(&mut b, KeyType::String(31), &Key::Bytes(b"abc".to_vec()));
    assert_eq!(b, [3, b'a', b'b', b'c']);
    let mut b = Vec::new();
    put_key(&mut b, KeyType::Integer, &Key::Int(258));
    assert_eq!(b, [0, 0, 1, 2]);
    assert_eq!(key_wire(KeyType::String(31)), (6, 32));
    assert_eq!(key_wire(KeyType::Ip), (4, 4));
}

#[test]
fn hellos_are_checked_line_by_line() {
    assert_eq!(check_version("HAProxyS 2.1"), Ok(()));
    assert_eq!(check_version("HAProxyS 2.0"), Ok(()));
    assert_eq!(check_version("HAProxyS 3.0"), Err(STATUS_ERR_VERSION));
    assert_eq!(check_version("HAProxyS 2.x"), Err(STATUS_ERR_VERSION));
    assert_eq!(check_version("hello"), Err(STATUS_ERR_PROTO));
    assert_eq!(sender_name("lbA 1234 1"), Ok("lbA"));
    assert_eq!(sender_name("lbA"), Err(STATUS_ERR_PROTO));
    assert!(hello("lbB", "lbA").starts_with("HAProxyS 2.1\nlbB\nlbA "));
}
