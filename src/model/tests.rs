//! State machine tests against the HAProxy 3.2 transcript (`shared/reference`).

use std::sync::Arc;

use super::*;
use crate::events::{EventBus, EventData, EventType, ServerEvent, Subscription};
pub(crate) use crate::testutil::{reference_registry, srv};

fn drain(sub: &Subscription) -> Vec<Arc<ServerEvent>> {
    sub.receiver().try_iter().collect()
}

fn kinds(evs: &[Arc<ServerEvent>]) -> Vec<&'static str> {
    evs.iter().map(|e| e.kind.name()).collect()
}

fn fail() -> CheckResult {
    CheckResult {
        status: CheckStatus::L4Con,
        duration_ms: 0,
        info: Some("Connection refused".into()),
        code: None,
        agent: false,
    }
}

fn pass() -> CheckResult {
    CheckResult {
        status: CheckStatus::L4Ok,
        duration_ms: 0,
        info: None,
        code: None,
        agent: false,
    }
}

#[test]
fn transcript_sequence() {
    let (reg, sub) = reference_registry();
    let w1 = reg.find_server("test/webserver1").unwrap();
    let w2 = reg.find_server("test/webserver2").unwrap();
    assert_eq!((w1.puid, w2.puid, w1.proxy_uuid), (1, 2, 3));
    // start-up check fails: down at once
    reg.apply(Command::CheckDone {
        server: w1.clone(),
        result: fail(),
    })
    .unwrap();
    let ev = drain(&sub);
    assert_eq!(kinds(&ev), ["SERVER_CHECK", "SERVER_DOWN", "SERVER_STATE"]);
    match &ev[0].data {
        EventData::Check(r) => assert_eq!((r.health.cur, r.result.status.short()), (0, "L4CON")),
        other => panic!("{other:?}"),
    }
    // two passes: up
    reg.apply(Command::CheckDone {
        server: w1.clone(),
        result: pass(),
    })
    .unwrap();
    reg.apply(Command::CheckDone {
        server: w1.clone(),
        result: pass(),
    })
    .unwrap();
    let ev = drain(&sub);
    assert_eq!(
        kinds(&ev),
        ["SERVER_CHECK", "SERVER_CHECK", "SERVER_UP", "SERVER_STATE"]
    );
    // steady passes publish nothing
    reg.apply(Command::CheckDone {
        server: w1.clone(),
        result: pass(),
    })
    .unwrap();
    assert!(drain(&sub).is_empty());
    // weight 50% of 1 = 0
    reg.apply(Command::SetWeight {
        server: w2.clone(),
        weight: "50%".into(),
    })
    .unwrap();
    assert_eq!(w2.uweight(), 0);
    assert_eq!(
        reg.apply(Command::SetWeight {
            server: w2.clone(),
            weight: "300".into()
        })
        .unwrap_err()
        .0,
        "Absolute weight can only be between 0 and 256 inclusive."
    );
    // CLI health down
    reg.apply(Command::SetHealth {
        server: w1.clone(),
        health: ForcedHealth::Down,
        cause: Cause::Cli,
    })
    .unwrap();
    let ev = drain(&sub);
    assert_eq!(kinds(&ev), ["SERVER_DOWN", "SERVER_STATE"]);
    match &ev[1].data {
        EventData::State(st) => {
            assert_eq!((st.admin, st.cause.as_str()), (false, "changed from CLI"));
            assert_eq!(
                (st.old_state, st.new_state),
                (OpState::Running, OpState::Stopped)
            );
        }
        other => panic!("{other:?}"),
    }
    // state maint
    reg.apply(Command::SetAdmin {
        server: w2.clone(),
        action: AdminAction::Maint,
        cause: Cause::Cli,
    })
    .unwrap();
    let ev = drain(&sub);
    assert_eq!(kinds(&ev), ["SERVER_ADMIN", "SERVER_DOWN", "SERVER_STATE"]);
    match (&ev[0].data, &ev[2].data) {
        (EventData::Admin(a), EventData::State(st)) => {
            assert!(a.new_admin.maint() && !a.old_admin.maint());
            assert!(st.admin && st.cause.is_empty());
        }
        other => panic!("{other:?}"),
    }
    // add / enable / disable / del a dynamic server
    let mut dyn_cfg = srv("dyn", 29083, false);
    dyn_cfg.params.check = false;
    let out = reg
        .apply(Command::AddServer {
            backend: "test".into(),
            config: Box::new(dyn_cfg.clone()),
        })
        .unwrap();
    assert_eq!(out.message, "New server registered.");
    let d = out.server.unwrap();
    assert_eq!((d.puid, d.admin().0), (3, AdminFlags::FMAINT));
    assert_eq!(
        reg.apply(Command::AddServer {
            backend: "test".into(),
            config: Box::new(dyn_cfg)
        })
        .unwrap_err()
        .0,
        "Already exists a server with the same name in backend."
    );
    reg.apply(Command::SetAdmin {
        server: d.clone(),
        action: AdminAction::Ready,
        cause: Cause::Cli,
    })
    .unwrap();
    assert_eq!(
        reg.apply(Command::DelServer { server: d.clone() })
            .unwrap_err()
            .0,
        "Only servers in maintenance mode can be deleted."
    );
    reg.apply(Command::SetAdmin {
        server: d.clone(),
        action: AdminAction::Maint,
        cause: Cause::Cli,
    })
    .unwrap();
    assert_eq!(
        reg.apply(Command::DelServer { server: d.clone() })
            .unwrap()
            .message,
        "Server deleted."
    );
    let ev = drain(&sub);
    assert_eq!(
        kinds(&ev),
        [
            "SERVER_ADD",
            "SERVER_ADMIN",
            "SERVER_UP",
            "SERVER_STATE",
            "SERVER_ADMIN",
            "SERVER_DOWN",
            "SERVER_STATE",
            "SERVER_DEL"
        ]
    );
    assert!(ev[7].reference.is_none() && d.deleted());
    assert!(reg.find_server("test/dyn").is_err());
    // addr change
    let out = reg
        .apply(Command::SetAddr {
            server: w1.clone(),
            ip: "127.0.0.2".parse().unwrap(),
            port: Some(29081),
            cause: Cause::Cli,
        })
        .unwrap();
    assert_eq!(
        out.message,
        "IP changed from '127.0.0.1' to '127.0.0.2' by 'stats socket command'"
    );
    // health up, state ready
    reg.apply(Command::SetHealth {
        server: w1.clone(),
        health: ForcedHealth::Up,
        cause: Cause::Cli,
    })
    .unwrap();
    reg.apply(Command::SetAdmin {
        server: w2.clone(),
        action: AdminAction::Ready,
        cause: Cause::Cli,
    })
    .unwrap();
    let ev = drain(&sub);
    assert_eq!(
        kinds(&ev),
        [
            "SERVER_INETADDR",
            "SERVER_UP",
            "SERVER_STATE",
            "SERVER_ADMIN",
            "SERVER_UP",
            "SERVER_STATE"
        ]
    );
    // listener stops: fail (3 → 2, still up), fail (down)
    reg.apply(Command::CheckDone {
        server: w1.clone(),
        result: fail(),
    })
    .unwrap();
    reg.apply(Command::CheckDone {
        server: w1.clone(),
        result: fail(),
    })
    .unwrap();
    let ev = drain(&sub);
    assert_eq!(
        kinds(&ev),
        [
            "SERVER_CHECK",
            "SERVER_CHECK",
            "SERVER_DOWN",
            "SERVER_STATE"
        ]
    );
}

#[test]
fn lookups_use_haproxy_wording() {
    let (reg, _sub) = reference_registry();
    assert_eq!(
        reg.find_server("test").unwrap_err().to_string(),
        "Require 'backend/server'."
    );
    assert_eq!(
        reg.find_server("nope/x").unwrap_err().to_string(),
        "No such backend."
    );
    assert_eq!(
        reg.find_server("test/nope").unwrap_err().to_string(),
        "No such server."
    );
}

#[test]
fn drain_keeps_server_up_but_out_of_balancing() {
    let (reg, sub) = reference_registry();
    let w2 = reg.find_server("test/webserver2").unwrap();
    reg.apply(Command::SetAdmin {
        server: w2.clone(),
        action: AdminAction::Drain,
        cause: Cause::Cli,
    })
    .unwrap();
    assert_eq!(kinds(&drain(&sub)), ["SERVER_ADMIN"]);
    assert_eq!(w2.op_state(), OpState::Running);
    assert!(!w2.is_usable());
    assert_eq!(reg.backend("test").unwrap().srv_act(), 1);
}

#[test]
fn full_queue_drops_and_counts() {
    let bus = Arc::new(EventBus::new());
    let sub = bus.subscribe("small", 2, None);
    let (reg, _) = reference_registry();
    let w1 = reg.find_server("test/webserver1").unwrap();
    for _ in 0..5 {
        bus.publish(ServerEvent {
            kind: EventType::ServerUp,
            when: 0,
            name: w1.name.clone(),
            puid: 1,
            rid: 0,
            proxy_name: w1.proxy_name.clone(),
            proxy_uuid: 3,
            reference: None,
            data: EventData::None,
            published: None,
        });
    }
    assert_eq!((sub.receiver().len(), sub.dropped()), (2, 3));
}

/// `track` at start-up: trackers inherit maintenance and drain from the top of the chain, and
/// a tracker already in maintenance (`disabled`) keeps it to itself, as HAProxy's
/// `srv_compute_all_admin_states` does; at run time a DOWN reaches the whole chain with
/// SERVER_DOWN events of its own.
#[test]
fn tracking_chains_inherit_as_haproxy() {
    let mut cfg = crate::testutil::reference_config();
    let be = &mut cfg.proxies[1];
    // webserver1 (checked) <- t1 (disabled) <- t2; webserver1 <- t3
    let mut t1 = srv("t1", 1, false);
    t1.params.track = Some("webserver1".into());
    t1.params.disabled = true;
    let mut t2 = srv("t2", 2, false);
    t2.params.track = Some("t1".into());
    let mut t3 = srv("t3", 3, false);
    t3.params.track = Some("test/webserver1".into());
    be.servers.extend([t1, t2, t3]);
    let bus = Arc::new(EventBus::new());
    let sub = bus.subscribe("t", 1000, None);
    let reg = Registry::new(cfg, bus);
    let get = |n: &str| reg.find_server(&format!("test/{n}")).unwrap();
    assert!(get("t1").admin().has(AdminFlags::FMAINT));
    assert!(
        !get("t2").admin().maint(),
        "t1's own maintenance stays with t1"
    );
    assert_eq!(
        get("webserver1").trackers().len(),
        2,
        "t1 and t3 track webserver1"
    );
    assert_eq!(
        get("t2").tracked().map(|t| t.name.to_string()),
        Some("t1".into())
    );
    reg.apply(Command::SetHealth {
        server: get("webserver1"),
        health: ForcedHealth::Down,
        cause: Cause::Cli,
    })
    .unwrap();
    assert_eq!(get("t3").op_state(), OpState::Stopped);
    // t1 is in maintenance: nothing passes through it
    assert_eq!(get("t2").op_state(), OpState::Running);
    let downs: Vec<String> = drain(&sub)
        .iter()
        .filter(|e| e.kind == EventType::ServerDown)
        .map(|e| e.name.to_string())
        .collect();
    assert_eq!(downs, ["webserver1", "t3"]);
    // maintenance of webserver1 reaches t3 as IMAINT
    reg.apply(Command::SetAdmin {
        server: get("webserver1"),
        action: AdminAction::Maint,
        cause: Cause::Cli,
    })
    .unwrap();
    assert!(get("t3").admin().has(AdminFlags::IMAINT));
    reg.apply(Command::SetAdmin {
        server: get("webserver1"),
        action: AdminAction::Ready,
        cause: Cause::Cli,
    })
    .unwrap();
    assert!(!get("t3").admin().maint());
    assert!(get("t3").op_state().is_up());
}

/// HAProxy's `srv_dynamic_maxconn` and its default `fullconn` (a tenth of the frontends'
/// `maxconn`, rounded up).
#[test]
fn dynamic_maxconn_grows_with_the_backend() {
    let mut cfg = crate::testutil::reference_config();
    cfg.proxies[0].maxconn = 1000; // fe -> test: fullconn 100
    let s = &mut cfg.proxies[1].servers[1].params;
    s.minconn = 2;
    s.maxconn = 10;
    let reg = Registry::new(cfg, Arc::new(EventBus::new()));
    let be = reg.backend("test").unwrap();
    assert_eq!(be.fullconn(), 100);
    let w2 = reg.find_server("test/webserver2").unwrap();
    assert_eq!(w2.dynamic_maxconn(0, 100), 2);
    assert_eq!(w2.dynamic_maxconn(50, 100), 5);
    assert_eq!(w2.dynamic_maxconn(100, 100), 10);
    assert_eq!(w2.dynamic_maxconn(500, 100), 10);
    // a static limit, and none
    let w1 = reg.find_server("test/webserver1").unwrap();
    assert_eq!(w1.dynamic_maxconn(50, 100), 0);
    reg.apply(Command::SetMaxconn {
        server: w1.clone(),
        maxconn: 7,
    })
    .unwrap();
    assert_eq!(
        w1.dynamic_maxconn(0, 100),
        7,
        "set maxconn keeps a static limit static"
    );
}
