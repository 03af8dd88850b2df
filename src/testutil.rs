//! Unit-test support shared by modules: the configuration and registry of the HAProxy 3.2
//! transcript (`shared/reference`).

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Capabilities, Config, Location, ProxyConfig, ServerConfig, ServerParams};
use crate::events::{EventBus, Subscription};
use crate::model::Registry;

/// A server line of the transcript's shape (rise 2, fall 2, inter 300ms).
pub fn srv(name: &str, port: u16, check: bool) -> ServerConfig {
    ServerConfig {
        name: name.into(),
        addr: format!("127.0.0.1:{port}").parse().expect("addr"),
        params: ServerParams {
            check,
            rise: 2,
            fall: 2,
            inter: Duration::from_millis(300),
            ..Default::default()
        },
        location: Location::default(),
    }
}

/// The transcript's configuration: frontend `fe` (id 2) → backend `test` (id 3) with
/// webserver1 (check) and webserver2; global maxconn 9985.
pub fn reference_config() -> Config {
    let mut fe = ProxyConfig::new(
        "fe",
        Capabilities {
            frontend: true,
            backend: false,
        },
        Location::default(),
    );
    fe.id = Some(2);
    fe.default_backend = Some("test".into());
    let mut be = ProxyConfig::new(
        "test",
        Capabilities {
            frontend: false,
            backend: true,
        },
        Location::default(),
    );
    be.id = Some(3);
    be.log_health_checks = true;
    be.servers = vec![
        srv("webserver1", 29081, true),
        srv("webserver2", 29082, false),
    ];
    let mut cfg = Config {
        proxies: vec![fe, be],
        ..Default::default()
    };
    cfg.global.maxconn = Some(9985);
    cfg
}

/// A registry over [`reference_config`] and an event subscription.
pub fn reference_registry() -> (Arc<Registry>, Arc<Subscription>) {
    let bus = Arc::new(EventBus::new());
    let sub = bus.subscribe("test", 1000, None);
    (Registry::new(reference_config(), bus), sub)
}
