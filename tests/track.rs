//! `track`: servers that take the state of another one (checked once, there), end to end with
//! the real binary, its Runtime API and a Lua script.

mod common;

use std::time::Duration;

use common::{cli, free_port, wait_until, write_file, Harp};

const DEADLINE: Duration = Duration::from_secs(10);

fn wait_status(h: &Harp, api: u16, row: &str, want: &str) {
    assert!(
        wait_until(DEADLINE, || common::stat_field(api, row, "status") == want),
        "{row} never {want} (now {}): {}",
        common::stat_field(api, row, "status"),
        h.stderr()
    );
}

#[test]
fn trackers_follow_the_tracked_server_state_maintenance_and_drain() {
    let up = common::accepting_upstream();
    let api = free_port();
    let dir = tempfile::tempdir().unwrap();
    let script = write_file(
        dir.path(),
        "track.lua",
        r#"
core.register_cli({"tracks"}, "who tracks whom", function(applet)
    local t1 = core.backends["be2"].servers["t1"]
    local s1 = core.backends["be1"].servers["s1"]
    applet:send(string.format("%s %d %s\n", t1:tracking():get_name(),
        #s1:get_trackers(), tostring(s1:tracking())))
end)
"#,
    );
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n    lua-load {}\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         backend be1\n    server s1 127.0.0.1:{up} check inter 100ms rise 1 fall 1\n\
         backend be2\n    server t1 127.0.0.1:{up} track be1/s1\n\
         backend be3\n    server t2 127.0.0.1:{up} track be2/t1\n",
        script.display()
    );
    let mut h = Harp::spawn_in(dir, &cfg, &[]);
    h.wait_port(api);
    wait_status(&h, api, "be2,t1,", "UP");
    assert_eq!(common::stat_field(api, "be2,t1,", "tracked"), "be1/s1");
    assert_eq!(common::stat_field(api, "be3,t2,", "tracked"), "be2/t1");
    assert_eq!(cli(api, "tracks"), "s1 1 nil\n\n");

    // down: the tracked server's line first, then each tracker's, naming what it tracks
    assert_eq!(cli(api, "set server be1/s1 health down"), "\n");
    wait_status(&h, api, "be3,t2,", "DOWN");
    assert!(h.wait_log("Server be3/t2 is DOWN via be2/t1. 0 active and 0 backup servers left."));
    let err = h.stderr();
    let (a, b, c) = (
        err.find("Server be1/s1 is DOWN, changed from CLI.")
            .unwrap(),
        err.find("Server be2/t1 is DOWN via be1/s1. 0 active")
            .unwrap(),
        err.find("Server be3/t2 is DOWN via be2/t1.").unwrap(),
    );
    assert!(a < b && b < c, "{err}");
    assert_eq!(
        cli(api, "set server be2/t1 health up"),
        "cannot change health on a tracking server.\n\n"
    );
    // the check brings it back, and the trackers with it
    wait_status(&h, api, "be2,t1,", "UP");
    wait_status(&h, api, "be3,t2,", "UP");
    assert!(h.wait_log("Server be2/t1 is UP via be1/s1."));

    // maintenance is inherited (IMAINT), and so is its end
    assert_eq!(cli(api, "set server be1/s1 state maint"), "\n");
    wait_status(&h, api, "be2,t1,", "MAINT (via be1/s1)");
    wait_status(&h, api, "be3,t2,", "MAINT (via be2/t1)");
    assert!(h.wait_log("Server be2/t1 is going DOWN for maintenance via be1/s1."));
    assert_eq!(
        cli(api, "del server be1/s1"),
        "This server cannot be removed at runtime due to other configuration elements pointing to it.\n\n"
    );
    assert_eq!(cli(api, "set server be1/s1 state ready"), "\n");
    wait_status(&h, api, "be3,t2,", "UP");
    assert!(h.wait_log("Server be2/t1 is UP/READY (leaving maintenance)."));

    assert_eq!(cli(api, "set server be1/s1 state drain"), "\n");
    wait_status(&h, api, "be2,t1,", "DRAIN");
    assert!(h.wait_log("Server be2/t1 enters drain state via be1/s1."));
    assert_eq!(cli(api, "set server be1/s1 state ready"), "\n");
    wait_status(&h, api, "be2,t1,", "UP");
    assert!(h.wait_log("Server be2/t1 is UP (leaving drain) via be1/s1."));

    // a tracker's own maintenance and the inherited one, one after the other
    for cmd in [
        "set server be2/t1 state maint",
        "set server be1/s1 state maint",
        "set server be2/t1 state ready",
    ] {
        assert_eq!(cli(api, cmd), "\n", "{cmd}");
    }
    assert!(h.wait_log(
        "Server be2/t1 is leaving forced maintenance but remains in maintenance via be1/s1."
    ));
    assert_eq!(cli(api, "set server be1/s1 state ready"), "\n");
    wait_status(&h, api, "be2,t1,", "UP");
}

#[test]
fn a_dynamic_server_may_track_a_checked_one() {
    let up = common::accepting_upstream();
    let api = free_port();
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         backend be1\n    balance roundrobin\n    server s1 127.0.0.1:{up} check inter 100ms\n    server s2 127.0.0.1:{up}\n"
    );
    let mut h = Harp::spawn(&cfg, &[]);
    h.wait_port(api);
    let add = |line: &str| cli(api, &format!("add server be1/{line}"));
    assert_eq!(
        add(&format!("d1 127.0.0.1:{up} track s2")),
        "'server be1/d1' : unable to use be1/s2 for tracking as it does not have any check nor agent enabled.\n\n"
    );
    assert_eq!(
        add(&format!("d1 127.0.0.1:{up} track nope/s1")),
        "'server be1/d1' : unable to find required proxy 'nope' for tracking.\n\n"
    );
    assert_eq!(
        add(&format!("d1 127.0.0.1:{up} track s1")),
        "New server registered.\n\n"
    );
    assert_eq!(common::stat_field(api, "be1,d1,", "tracked"), "be1/s1");
    assert_eq!(cli(api, "set server be1/d1 state ready"), "\n");
    assert_eq!(cli(api, "set server be1/s1 health down"), "\n");
    wait_status(&h, api, "be1,d1,", "DOWN");
    assert!(h.wait_log("Server be1/d1 is DOWN via be1/s1."));
}
