//! Remote Desktop farms, HAProxy's classic TCP-mode setup: the RDP cookie of a client's
//! first packet (`req.rdp_cookie`, the `RDP_COOKIE` ACL), `balance rdp-cookie` and
//! `persist rdp-cookie`. `HARP_BIN=<wrapper running haproxy -db "$@">` runs these against
//! HAProxy: the servers picked are HAProxy's own.

mod common;

use common::{cli, free_port, named_upstream, Harp};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// An RDP client's first packet: TPKT, X.224 Connection Request, the cookie line, and a
/// negotiation request.
fn first_packet(cookie: &str) -> Vec<u8> {
    let mut body = vec![0u8, 0xe0, 0, 0, 0, 0, 0];
    body.extend_from_slice(format!("Cookie: {cookie}\r\n").as_bytes());
    body.extend_from_slice(&[1, 0, 8, 0, 3, 0, 0, 0]);
    body[0] = (body.len() - 1) as u8;
    let mut p = vec![3, 0];
    p.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    p.extend_from_slice(&body);
    p
}

/// Connects as an RDP client with `cookie` and returns the name of the server that answered
/// (empty when the connection was refused or closed).
fn server_for(port: u16, cookie: &str) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).ok();
    c.write_all(&first_packet(cookie)).expect("send");
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    out.trim().to_string()
}

fn farm(extra_fe: &str, extra_be: &str) -> (Harp, u16, u16, [u16; 3]) {
    let (front, api) = (free_port(), free_port());
    let ups = [
        named_upstream("ts1"),
        named_upstream("ts2"),
        named_upstream("ts3"),
    ];
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         frontend ft_rdp\n    bind 127.0.0.1:{front}\n    tcp-request inspect-delay 5s\n{extra_fe}\
         \x20   tcp-request content accept if RDP_COOKIE\n    default_backend bk_rdp\n\
         backend bk_rdp\n{extra_be}\
         \x20   server ts1 127.0.0.1:{}\n    server ts2 127.0.0.1:{}\n    server ts3 127.0.0.1:{}\n",
        ups[0], ups[1], ups[2]
    );
    let h = Harp::start(&cfg, front, &[]);
    (h, front, api, ups)
}

#[test]
fn balance_rdp_cookie_sends_a_user_to_the_server_haproxy_picks() {
    let (_h, front, api, _) = farm("", "    balance rdp-cookie\n");
    // the picks of HAProxy 2.6 (sdbm of the user name over its map of three servers)
    let expected = [
        ("alice", "ts3"),
        ("bob", "ts3"),
        ("carol", "ts2"),
        ("dave", "ts1"),
        ("erin", "ts3"),
        ("frank", "ts3"),
    ];
    for (user, server) in expected {
        for _ in 0..2 {
            assert_eq!(
                server_for(front, &format!("mstshash={user}")),
                server,
                "{user}"
            );
        }
    }
    // a client without a cookie is balanced all the same (round robin)
    let none = server_for(front, "other=1");
    assert!(["ts1", "ts2", "ts3"].contains(&none.as_str()), "{none:?}");
    // a map-based hash is a static algorithm, as HAProxy judges it (3.2 ends the first
    // reply with an empty line, 2.6 does not)
    assert_eq!(
        cli(api, "add server bk_rdp/ts9 127.0.0.1:1").trim_end(),
        "Backend must use a dynamic load balancing to support dynamic servers."
    );
    assert_eq!(
        cli(api, "set server bk_rdp/ts1 weight 50"),
        "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n\n"
    );
}

#[test]
fn the_hash_function_and_the_weights_pick_as_in_haproxy() {
    let (_h, front, _api, _) = farm(
        "",
        "    balance rdp-cookie\n    hash-type map-based crc32\n    server ts4 127.0.0.1:1 disabled\n",
    );
    // HAProxy 2.6's picks for user0x..user7x: crc32 over three servers (one more in
    // maintenance, out of the map)
    let picks: Vec<String> = (0..8)
        .map(|i| server_for(front, &format!("mstshash=user{i}x")))
        .collect();
    assert_eq!(
        picks,
        ["ts2", "ts2", "ts2", "ts1", "ts3", "ts3", "ts1", "ts3"]
    );
}

#[test]
fn persist_rdp_cookie_follows_the_routing_token_of_a_session_broker() {
    let (_h, front, _api, ups) = farm("", "    balance roundrobin\n    persist rdp-cookie\n");
    // msts=<address>.<port>.0000: the address and port as the broker encodes them
    let token = |port: u16| {
        let addr = u32::from_le_bytes([127, 0, 0, 1]);
        format!("msts={addr}.{}.0000", port.swap_bytes())
    };
    for _ in 0..4 {
        assert_eq!(server_for(front, &token(ups[2])), "ts3");
        assert_eq!(server_for(front, &token(ups[0])), "ts1");
    }
    // a token naming no server: balanced as usual
    let other = server_for(front, &token(1));
    assert!(["ts1", "ts2", "ts3"].contains(&other.as_str()), "{other:?}");
}

#[test]
fn the_cookie_is_a_fetch_for_rules_and_stick_tables() {
    let (_h, front, api, _) = farm(
        "    tcp-request content reject if { req.rdp_cookie(mstshash) -m str mallory }\n",
        "    balance roundrobin\n    stick-table type string len 32 size 10k expire 8h\n\
         \x20   stick on req.rdp_cookie(mstshash)\n",
    );
    assert_eq!(server_for(front, "mstshash=mallory"), "");
    // round robin would move her on: the table keeps her where she first went
    let first = server_for(front, "mstshash=alice");
    for _ in 0..4 {
        assert_eq!(server_for(front, "mstshash=alice"), first);
    }
    let table = cli(api, "show table bk_rdp");
    assert!(table.contains(" key=alice "), "{table}");
}
