//! The check thread's tasks: a supervisor that follows the registry, and one loop per server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::probe::{probe, ProbeSpec};
use crate::config::ServerParams;
use crate::model::{Command, Health, OpState, Registry, Server};

/// How often the supervisor re-scans the registry and sends `Command::Tick`.
const SCAN_EVERY: Duration = Duration::from_millis(100);

/// Follows the registry until `stop` turns true: one check task per server whose check is
/// enabled, started when it appears, aborted when it is deleted or its check disabled.
pub(super) async fn supervise(reg: Arc<Registry>, mut stop: watch::Receiver<bool>) {
    let mut tasks: HashMap<usize, CheckTask> = HashMap::new();
    // agent checks: one task per server whose agent is enabled; maintenance does not pause
    // them (an agent may say `ready`)
    let mut agents: HashMap<usize, JoinHandle<()>> = HashMap::new();
    let mut agents_seen: Vec<usize> = Vec::new();
    // name resolution (`resolvers`), one task per server with a name, until it is deleted
    let mut resolving: HashMap<usize, (Arc<Server>, JoinHandle<()>)> = HashMap::new();
    let shared = Arc::new(super::resolve::SharedAnswers::default());
    let mut seed = seed_from_clock();
    let mut first_scan = true;
    let mut tick = tokio::time::interval(SCAN_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {}
        }
        if *stop.borrow() {
            break;
        }
        let _ = reg.apply(Command::Tick);
        let mut seen: Vec<usize> = Vec::with_capacity(tasks.len());
        agents_seen.clear();
        for p in reg.proxies() {
            for s in p.servers().iter() {
                let id = Arc::as_ptr(s) as usize;
                if let (Some(rid), Some(_), false) =
                    (&s.params.resolvers, &s.params.fqdn, s.deleted())
                {
                    if let (std::collections::hash_map::Entry::Vacant(slot), Some(r)) = (
                        resolving.entry(id),
                        reg.config.resolvers.iter().find(|r| &r.name == rid),
                    ) {
                        let h = tokio::spawn(super::resolve::resolve_loop(
                            reg.clone(),
                            s.clone(),
                            r.clone(),
                            shared.clone(),
                        ));
                        slot.insert((s.clone(), h));
                    }
                }
                // `observe`: errors seen by the workers reached `error-limit`, once or more
                let alarm = s.take_passive_alarm();
                if let Some((times, errors)) = alarm {
                    for _ in 0..times.min(1024) {
                        let _ = reg.apply(Command::PassiveErrors {
                            server: s.clone(),
                            errors,
                        });
                    }
                }
                if !s.deleted() && s.agent_enabled() {
                    agents_seen.push(id);
                    if !agents.get(&id).is_some_and(|h| !h.is_finished()) {
                        seed = splitmix(seed);
                        let h = tokio::spawn(agent_loop(reg.clone(), s.clone(), seed, first_scan));
                        agents.insert(id, h);
                    }
                }
                // Maintenance pauses checks (HAProxy CHK_ST_PAUSED).
                if s.deleted() || s.admin().maint() || !s.check_state().enabled {
                    continue;
                }
                let id = Arc::as_ptr(s) as usize;
                seen.push(id);
                let alive = tasks.get(&id).is_some_and(|t| !t.handle.is_finished());
                if !alive {
                    seed = splitmix(seed);
                    let hurry = Arc::new(Notify::new());
                    let handle = tokio::spawn(check_loop(
                        reg.clone(),
                        s.clone(),
                        seed,
                        first_scan,
                        hurry.clone(),
                    ));
                    tasks.insert(id, CheckTask { handle, hurry });
                }
                // every `on-error` brings the next check forward (HAProxy's FASTINTER); a check
                // under way goes on, and one due sooner stays sooner. A task started in this
                // same scan gets it too (its first check, spread over `inter`, would come
                // late otherwise): the permit waits for its first sleep.
                if let (Some(t), Some(_)) = (tasks.get(&id), alarm) {
                    t.hurry.notify_one();
                }
            }
        }
        resolving.retain(|_, (s, h)| {
            let keep = !s.deleted() && !h.is_finished();
            if !keep {
                h.abort();
            }
            keep
        });
        seen.sort_unstable();
        tasks.retain(|id, t| {
            let keep = seen.binary_search(id).is_ok();
            if !keep {
                t.handle.abort();
            }
            keep
        });
        agents_seen.sort_unstable();
        agents.retain(|id, h| {
            let keep = agents_seen.binary_search(id).is_ok();
            if !keep {
                h.abort();
            }
            keep
        });
        first_scan = false;
    }
    for (_, t) in tasks.drain() {
        t.handle.abort();
    }
    for (_, h) in agents.drain() {
        h.abort();
    }
}

/// Asks a server's agent forever, every `agent-inter` (default 2s) with `spread-checks`
/// jitter; the first time at a random point of it at start-up, as health checks.
async fn agent_loop(reg: Arc<Registry>, srv: Arc<Server>, mut rng: u64, spread_first: bool) {
    let Some(proxy) = reg.proxy_at(srv.proxy_index).cloned() else {
        return;
    };
    let spread = reg.global().spread_checks.min(50);
    // HAProxy's default agent interval is its own 2s, whatever `inter` says
    let inter = srv
        .params
        .agent_inter
        .unwrap_or(Duration::from_secs(2))
        .max(Duration::from_millis(1));
    rng = splitmix(rng);
    if spread_first {
        tokio::time::sleep(first_delay(&reg, inter, rng)).await;
    }
    loop {
        let a = srv.agent_state();
        if srv.deleted() || !a.check.enabled {
            return;
        }
        let spec = ProbeSpec {
            // port 0 (set at run time): the server's own, as in HAProxy
            addr: SocketAddr::new(
                a.addr.unwrap_or(srv.addr().ip()),
                if a.port == 0 {
                    srv.addr().port()
                } else {
                    a.port
                },
            ),
            kind: crate::config::CheckKind::Tcp,
            inter,
            timeout_connect: proxy.config.timeouts.connect,
            timeout_check: proxy.config.timeouts.check,
            proxy: None,
            rules: Arc::new(Vec::new()),
            proto: false,
            source: srv
                .params
                .source
                .clone()
                .or_else(|| proxy.config.source.clone()),
            tls: None,
            rule_tls: None,
        };
        let (reply, duration_ms) = super::agent::ask(&spec, a.send.as_deref()).await;
        let _ = reg.apply(Command::AgentDone {
            server: srv.clone(),
            reply,
            duration_ms,
        });
        rng = splitmix(rng);
        tokio::time::sleep(jitter(inter, spread, rng)).await;
    }
}

/// A server's check loop, and how to bring its next check forward.
struct CheckTask {
    handle: JoinHandle<()>,
    /// Notified when `observe` raised an alarm: the wait for the next check shrinks to the
    /// hurried interval ([`hurried_interval`]) if that is sooner.
    hurry: Arc<Notify>,
}

/// Checks one server forever: at start-up the first check falls at a random point of `inter`
/// (servers found later, e.g. leaving maintenance or `enable health`, are checked at once, as
/// HAProxy does); then one check after another separated by the interval the health calls for,
/// plus `spread-checks` jitter, or sooner when `hurry` says so.
async fn check_loop(
    reg: Arc<Registry>,
    srv: Arc<Server>,
    mut rng: u64,
    spread_first: bool,
    hurry: Arc<Notify>,
) {
    let Some(proxy) = reg.proxy_at(srv.proxy_index).cloned() else {
        return;
    };
    let spread = reg.global().spread_checks.min(50);
    let inter = srv.params.inter.max(Duration::from_millis(1));
    rng = splitmix(rng);
    if spread_first {
        let first = first_delay(&reg, inter, rng);
        wait(&srv, tokio::time::Instant::now() + first, &hurry).await;
    }
    let mut spec = ProbeSpec {
        addr: check_addr(&srv),
        kind: proxy.config.check.clone(),
        inter,
        timeout_connect: proxy.config.timeouts.connect,
        timeout_check: proxy.config.timeouts.check,
        // HAProxy: a check to the server's own address, or any with `check-send-proxy` (v2
        // when the server sends v2)
        proxy: if srv.params.check_send_proxy {
            Some(
                srv.params
                    .proxy_protocol()
                    .unwrap_or(crate::config::ProxyProtocol::V1),
            )
        } else {
            srv.params
                .proxy_protocol()
                .filter(|_| srv.params.check_port.is_none() && srv.params.check_addr.is_none())
        },
        rules: Arc::new(proxy.config.tcp_check_rules.clone()),
        proto: proxy.config.tcp_check_proto,
        source: srv
            .params
            .source
            .clone()
            .or_else(|| proxy.config.source.clone()),
        tls: check_tls(&srv, reg.global().ssl_server_verify),
        // `tcp-check connect ssl` without `check-ssl`: the server's verification settings
        rule_tls: proxy
            .config
            .tcp_check_rules
            .iter()
            .any(|r| matches!(r, crate::config::tcp_check::TcpCheckRule::Connect(c) if c.ssl))
            .then(|| crate::tls::ServerTls::new(&srv.params, reg.global().ssl_server_verify).ok())
            .flatten()
            .map(Arc::new),
    };
    loop {
        if srv.deleted() {
            return;
        }
        // `set server addr` may have moved it since the last check.
        spec.addr = check_addr(&srv);
        let result = probe(&spec).await;
        if srv.deleted() || srv.admin().maint() || !srv.check_state().enabled {
            return;
        }
        let _ = reg.apply(Command::CheckDone {
            server: srv.clone(),
            result,
        });
        let health = srv.check_state().health;
        let base = next_interval(&srv.params, health, srv.op_state());
        rng = splitmix(rng);
        let due = tokio::time::Instant::now() + jitter(base, spread, rng);
        wait(&srv, due, &hurry).await;
    }
}

/// When a check first runs at start-up: at a random point of `inter`, or of at most
/// `max-spread-checks`, so that checks do not all start at once.
fn first_delay(reg: &Registry, inter: Duration, rng: u64) -> Duration {
    let over = reg
        .global()
        .max_spread_checks
        .map_or(inter, |m| inter.min(m));
    Duration::from_nanos(rng % (over.as_nanos() as u64).max(1))
}

/// Sleeps until `due`, or until the sooner deadline a `hurry` notification sets.
async fn wait(srv: &Server, mut due: tokio::time::Instant, hurry: &Notify) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(due) => return,
            _ = hurry.notified() => {
                let h = srv.check_state().health;
                let soon = tokio::time::Instant::now()
                    + hurried_interval(&srv.params, h, srv.op_state());
                due = due.min(soon);
            }
        }
    }
}

/// HAProxy's `srv_getinter` with the FASTINTER flag an `observe` alarm sets: `fastinter`
/// (else `inter`) even at full health, but `downinter` (else `inter`) for a server down at 0.
pub fn hurried_interval(p: &ServerParams, health: Health, op: OpState) -> Duration {
    if op == OpState::Stopped && health.cur == 0 {
        return p.downinter.unwrap_or(p.inter);
    }
    p.fastinter.unwrap_or(p.inter)
}

/// `check-ssl` (or `ssl`): the TLS settings of the server's checks. The name sent and verified is
/// `verifyhost`, else `check-sni` (which is also the SNI); without either the certificate's
/// chain alone is verified, as HAProxy verifies a name only when given one. (The configuration
/// check already loaded the `ca-file`; should it fail now, the checks verify against no CA, so
/// they fail, and say why.)
fn check_tls(s: &Server, default_verify: bool) -> Option<super::CheckTls> {
    use crate::tls::Verify;
    use tokio_rustls::rustls::pki_types::ServerName;
    let p = &s.params;
    // an `ssl` server's checks speak TLS too, unless they go elsewhere (`port`, `addr`)
    let implied = p.ssl && p.check_port.is_none() && p.check_addr.is_none();
    if !p.check_ssl && !implied {
        return None;
    }
    let name_of = |n: &Option<String>| n.clone().and_then(|n| ServerName::try_from(n).ok());
    // the SNI is `check-sni`; the name verified `verifyhost`, else that SNI, else none
    let sni = name_of(&p.check_sni);
    let verify = match (
        p.verify.unwrap_or(default_verify),
        name_of(&p.verifyhost),
        &sni,
    ) {
        (false, _, _) => Verify::None,
        (true, Some(host), _) => Verify::ChainAndNamed(host),
        (true, None, Some(_)) => Verify::ChainAndName,
        (true, None, None) => Verify::ChainOnly,
    };
    let name = sni.unwrap_or_else(|| ServerName::IpAddress(s.addr().ip().into()));
    match crate::tls::client_config(verify, false, p.ca_file.as_deref(), "ca-file") {
        Ok(config) => Some(super::CheckTls { config, name }),
        Err(e) => {
            // no downgrade to clear text: a configuration that fails to verify anything
            crate::logging::alert(&format!("Server {}: check-ssl: {e}.", s.name));
            crate::tls::client_config(Verify::ChainOnly, false, None, "ca-file")
                .ok()
                .map(|config| super::CheckTls { config, name })
        }
    }
}

/// Where checks go: `addr` and `port` server keywords override the server's address.
fn check_addr(s: &Server) -> SocketAddr {
    let a = s.addr();
    SocketAddr::new(
        s.params.check_addr.unwrap_or(a.ip()),
        s.params.check_port.unwrap_or(a.port()),
    )
}

/// HAProxy's `srv_getinter()`: `downinter` while DOWN with health 0, `fastinter` while the health
/// counter is between its extremes, `inter` otherwise (each falls back to `inter`).
pub fn next_interval(p: &ServerParams, health: Health, op: OpState) -> Duration {
    if op == OpState::Stopped && health.cur == 0 {
        return p.downinter.unwrap_or(p.inter);
    }
    if health.cur != health.rise + health.fall - 1 {
        return p.fastinter.unwrap_or(p.inter);
    }
    p.inter
}

/// `spread-checks <pct>`: the interval moves by up to ±pct% at random.
fn jitter(base: Duration, spread_pct: u32, rng: u64) -> Duration {
    if spread_pct == 0 {
        return base;
    }
    let span = base.as_nanos() as u64 * spread_pct as u64 / 100;
    let offset = rng % (2 * span + 1);
    Duration::from_nanos((base.as_nanos() as u64 + offset).saturating_sub(span))
}

fn seed_from_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9e37_79b9_7f4a_7c15)
}

/// A small PRNG step (splitmix64): enough to spread checks, no cryptographic use.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_follow_srv_getinter() {
        let ms = Duration::from_millis;
        let mut p = ServerParams {
            inter: ms(1000),
            ..Default::default()
        };
        let h = |cur| Health {
            cur,
            rise: 2,
            fall: 3,
        };
        // Without fastinter/downinter everything is inter.
        assert_eq!(next_interval(&p, h(0), OpState::Stopped), ms(1000));
        assert_eq!(next_interval(&p, h(2), OpState::Running), ms(1000));
        p.fastinter = Some(ms(100));
        p.downinter = Some(ms(5000));
        assert_eq!(next_interval(&p, h(4), OpState::Running), ms(1000));
        assert_eq!(next_interval(&p, h(3), OpState::Running), ms(100));
        assert_eq!(next_interval(&p, h(1), OpState::Stopped), ms(100));
        assert_eq!(next_interval(&p, h(0), OpState::Stopped), ms(5000));
        // Health 0 but still up (never happens through the model): fastinter, as HAProxy.
        assert_eq!(next_interval(&p, h(0), OpState::Running), ms(100));
    }

    #[test]
    fn jitter_stays_in_range() {
        let base = Duration::from_millis(1000);
        let mut r = 1;
        for _ in 0..1000 {
            r = splitmix(r);
            let d = jitter(base, 10, r);
            assert!(d >= Duration::from_millis(900) && d <= Duration::from_millis(1100));
        }
        assert_eq!(jitter(base, 0, 5), base);
    }
}
