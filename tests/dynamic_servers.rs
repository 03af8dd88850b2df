//! `add server` through the Runtime API, then traffic reaches the new server (issue 5's "done
//! when"), and `del server` takes it out again; all with the real binary and `socat`.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{free_port, socat, wait_until, Harp};

/// An upstream that answers every connection with its own name, then closes.
struct Upstream {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Upstream {
    fn start(name: &'static str) -> Upstream {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        l.set_nonblocking(true).expect("nonblocking");
        let port = l.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.write_all(name.as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Upstream { port, stop }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Connects through the proxy and returns the upstream's name ("" if the proxy closed).
fn who(port: u16) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn added_server_gets_traffic_and_deleted_server_none() {
    let a = Upstream::start("A");
    let b = Upstream::start("B");
    let (fe, api) = (free_port(), free_port());
    let cfg = format!(
        "global\n    stats socket ipv4@127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{fe}\n    default_backend be\n\
         backend be\n    balance roundrobin\n    server a 127.0.0.1:{}\n",
        a.port
    );
    let mut harp = Harp::start(&cfg, fe, &[]);
    harp.wait_port(api);
    assert!((0..6).all(|_| who(fe) == "A"));

    let reply = socat(api, &format!("add server be/dyn 127.0.0.1:{}", b.port));
    assert_eq!(reply, "New server registered.\n\n");
    // A new dynamic server starts in maintenance: still only A.
    assert!((0..6).all(|_| who(fe) == "A"));
    assert_eq!(socat(api, "enable server be/dyn"), "\n");
    let mut seen_b = false;
    assert!(wait_until(Duration::from_secs(5), || {
        seen_b |= who(fe) == "B";
        seen_b
    }));
    let state = socat(api, "show servers state be");
    assert!(
        state.lines().any(|l| l.contains(" dyn 127.0.0.1 2 0 ")),
        "{state}"
    );

    assert_eq!(socat(api, "set server be/dyn state maint"), "\n");
    assert_eq!(socat(api, "del server be/dyn"), "Server deleted.\n\n");
    assert!((0..6).all(|_| who(fe) == "A"));
    assert!(harp
        .stderr()
        .contains("CLI : 'server be/dyn' : New server registered."));
    assert!(harp
        .stderr()
        .contains("Server be/dyn is UP/READY (leaving forced maintenance)."));
}
