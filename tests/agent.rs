//! Agent checks (`agent-check`) end to end: the real binary asks a real agent (a listener in
//! the test whose reply the test changes) and obeys it; the Runtime API and Lua control it.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{cli, free_port, wait_until, write_file, Harp};

const DEADLINE: Duration = Duration::from_secs(10);

/// An agent on 127.0.0.1: answers every connection with the current reply, and keeps what
/// it was sent. The thread ends with the test process.
struct Agent {
    port: u16,
    reply: Arc<Mutex<String>>,
    got: Arc<Mutex<Vec<u8>>>,
}

impl Agent {
    fn start(first: &str) -> Agent {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let reply = Arc::new(Mutex::new(first.to_string()));
        let got = Arc::new(Mutex::new(Vec::new()));
        let (r, g) = (reply.clone(), got.clone());
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(mut c) = c else { break };
                // the reply at once (a check ends within `inter`), then what harp sent
                let text = r.lock().unwrap().clone();
                let _ = c.write_all(text.as_bytes());
                c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                let mut buf = [0u8; 256];
                if let Ok(n) = c.read(&mut buf) {
                    g.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            }
        });
        Agent { port, reply, got }
    }

    fn say(&self, text: &str) {
        *self.reply.lock().unwrap() = text.to_string();
    }
}

fn wait_status(h: &Harp, api: u16, want: &str) {
    assert!(
        wait_until(DEADLINE, || common::stat_field(api, "be,s1,", "status")
            == want),
        "status never {want} (now {}): {}",
        common::stat_field(api, "be,s1,", "status"),
        h.stderr()
    );
}

#[test]
fn the_agent_steers_health_admin_state_weight_and_maxconn() {
    let agent = Agent::start("up\n");
    let up_port = common::accepting_upstream();
    let api = free_port();
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         backend be\n    option log-health-checks\n\
         \x20   server s1 127.0.0.1:{up_port} weight 10 agent-check agent-port {} agent-inter 50ms agent-send \"svc\\n\"\n",
        agent.port
    );
    let mut h = Harp::spawn(&cfg, &[]);
    h.wait_port(api);
    wait_status(&h, api, "no check");

    agent.say("down # maintenance window\n");
    wait_status(&h, api, "DOWN (agent)");
    assert!(h.wait_log(
        "Agent check for server be/s1 failed, reason: Layer7 wrong status, code: 0, \
         info: \"via agent : down (maintenance window)\", check duration: "
    ));
    assert!(h.wait_log("Server be/s1 is DOWN. 0 active and 0 backup servers left."));
    assert_eq!(common::stat_field(api, "be,s1,", "agent_status"), "L7STS");
    assert_eq!(common::stat_field(api, "be,s1,", "agent_health"), "0");

    agent.say("up 50% maxconn:7\n");
    wait_status(&h, api, "no check");
    assert!(h.wait_log("Agent check for server be/s1 succeeded, reason: Layer7 check passed"));
    assert_eq!(cli(api, "get weight be/s1"), "5 (initial 10)\n\n");
    assert_eq!(common::stat_field(api, "be,s1,", "slim"), "7");

    agent.say("drain\n");
    wait_status(&h, api, "DRAIN (agent)");
    // the agent keeps asking in maintenance, so it can end it
    agent.say("maint\n");
    wait_status(&h, api, "MAINT");
    agent.say("ready 100%\n");
    wait_status(&h, api, "no check");
    assert_eq!(cli(api, "get weight be/s1"), "10 (initial 10)\n\n");

    // a line without its end is ignored, whatever it says
    agent.say("down");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(common::stat_field(api, "be,s1,", "status"), "no check");
    assert_eq!(
        common::stat_field(api, "be,s1,", "last_agt"),
        "Ignoring incomplete line from agent"
    );
    let got = String::from_utf8_lossy(&agent.got.lock().unwrap()).to_string();
    assert!(got.starts_with("svc\nsvc\n"), "agent-send: {got:?}");
}

#[test]
fn an_unreachable_agent_leaves_the_server_up_and_the_cli_drives_the_agent() {
    // a port nobody listens on: refused (none of this process's tests binds it, and the
    // kernel gives no connection a port in its range)
    let dead_port = free_port();
    let up_port = common::accepting_upstream();
    let api = free_port();
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         backend be\n\
         \x20   server s1 127.0.0.1:{up_port} check inter 50ms agent-check agent-port {dead_port} agent-inter 50ms\n\
         \x20   server s2 127.0.0.1:{up_port}\n"
    );
    let mut h = Harp::spawn(&cfg, &[]);
    h.wait_port(api);
    assert!(wait_until(DEADLINE, || common::stat_field(
        api,
        "be,s1,",
        "agent_status"
    ) == "L4CON"));
    // the health check decides alone
    wait_status(&h, api, "UP");
    assert!(common::stat_field(api, "be,s1,", "last_agt").starts_with("Connection refused"));

    assert_eq!(cli(api, "set server be/s1 agent down"), "\n");
    wait_status(&h, api, "DOWN (agent)");
    assert!(h.wait_log("Server be/s1 is DOWN, changed from CLI."));
    // the health check passes, but the agent has not said up
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(common::stat_field(api, "be,s1,", "status"), "DOWN (agent)");
    assert_eq!(cli(api, "set server be/s1 agent up"), "\n");
    wait_status(&h, api, "UP");

    let replies = [
        (
            "set server be/s1 agent maybe",
            "'set server <srv> agent' expects 'up' or 'down'.\n\n",
        ),
        (
            "set server be/s1 agent-port 70000",
            "provided port is invalid\n\n",
        ),
        (
            "set server be/s1 agent-port x",
            "provided port is not an integer\n\n",
        ),
        (
            "set server be/s1 agent-addr 1.2.3",
            "invalid addr '1.2.3'\n\n",
        ),
        (
            "set server be/s1 agent-addr",
            "set server <b>/<s> agent-addr requires an address and optionally a port.\n\n",
        ),
        (
            "set server be/s2 agent up",
            "agent checks are not enabled on this server.\n\n",
        ),
        (
            "enable agent be/s2",
            "Agent was not configured on this server, cannot enable.\n\n",
        ),
        ("disable agent be/s1", "\n"),
        (
            "set server be/s1 agent-port 1",
            "agent checks are not enabled on this server\n\n",
        ),
        (
            "set server be/s1 agent-send hi",
            "agent checks are not enabled on this server.\n\n",
        ),
        ("enable agent be/s1", "\n"),
    ];
    for (cmd, want) in replies {
        assert_eq!(cli(api, cmd), want, "{cmd}");
    }
    let state = cli(api, "show servers state be");
    let s1 = state.lines().find(|l| l.contains(" s1 ")).unwrap_or("");
    let f: Vec<&str> = s1.split(' ').collect();
    // srv_agent_state (configured, enabled, agent), srv_agent_addr, srv_agent_port
    assert_eq!(
        (f[14], f[23], f[24]),
        ("22", "-", dead_port.to_string().as_str())
    );
    // moved to a live agent that says down
    let agent = Agent::start("stopped\n");
    let cmd = format!("set server be/s1 agent-addr 127.0.0.1 port {}", agent.port);
    assert_eq!(cli(api, &cmd), "\n");
    wait_status(&h, api, "DOWN (agent)");
    // maintenance pauses the health check (HAProxy's CHK_ST_PAUSED, 0x08), not the agent
    assert_eq!(cli(api, "set server be/s1 state maint"), "\n");
    let state = cli(api, "show servers state be");
    let s1 = state.lines().find(|l| l.contains(" s1 ")).unwrap_or("");
    let f: Vec<&str> = s1.split(' ').collect();
    assert_eq!((f[13], f[14]), ("14", "22"), "{state}");
}

#[test]
fn lua_sees_agent_checks_and_drives_the_agent() {
    let agent = Agent::start("up\n");
    let up_port = common::accepting_upstream();
    let api = free_port();
    let dir = tempfile::tempdir().unwrap();
    let script = write_file(
        dir.path(),
        "agent.lua",
        r#"
core.event_sub({"SERVER_CHECK"}, function(e, d)
    local c = d.check
    core.Info(string.format("check agent=%s result=%s short=%s health=%d/%d/%d",
        tostring(c.agent), c.result, c.reason.short, c.health.cur, c.health.rise, c.health.fall))
end)
core.register_cli({"agent", "force"}, "force the agent down", function(applet, _, _, how)
    local s = core.backends["be"].servers["s1"]
    if how == "down" then s:agent_force_down() else s:agent_force_up() end
end)
"#,
    );
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n    lua-load {}\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         backend be\n\
         \x20   server s1 127.0.0.1:{up_port} agent-check agent-port {} agent-inter 50ms\n",
        script.display(),
        agent.port
    );
    let mut h = Harp::spawn_in(dir, &cfg, &[]);
    h.wait_port(api);
    agent.say("fail\n");
    assert!(
        h.wait_log("check agent=true result=FAILED short=L7STS health=0/1/1"),
        "{}",
        h.stderr()
    );
    wait_status(&h, api, "DOWN (agent)");
    agent.say("up\n");
    assert!(h.wait_log("check agent=true result=PASSED short=L7OK health=1/1/1"));
    wait_status(&h, api, "no check");
    // Lua's force: the agent still answers up at its next turn
    agent.say("\n");
    assert_eq!(cli(api, "agent force down"), "\n");
    wait_status(&h, api, "DOWN (agent)");
    assert_eq!(cli(api, "agent force up"), "\n");
    wait_status(&h, api, "no check");
}

#[test]
fn agent_check_without_a_port_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_file(
        dir.path(),
        "h.cfg",
        "backend be\n    server s1 127.0.0.1:80 agent-check\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_harp"))
        .arg("-c")
        .arg("-f")
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("h.cfg:2") && err.contains("server s1 does not have agent port"),
        "{err}"
    );
}
