//! Run-time resolution of server names (`server ... <name>:<port> resolvers <id>`), as HAProxy's
//! resolvers do: every `hold valid` the name is asked of the section's name servers (A, or AAAA
//! first with `resolve-prefer ipv6`, HAProxy's default), over UDP, `resolve_retries` times at
//! `timeout retry` intervals. A new address moves the server (`changed its IP ... by
//! <resolvers>/<nameserver>`); a server that started without one (`init-addr none`) leaves its
//! resolution maintenance; a name that fails for `hold nx` puts the server into it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::UdpSocket;

use crate::config::ResolversConfig;
use crate::model::{Command, DnsStatus, Registry, Server};

/// Record types asked.
const A: u16 = 1;
const AAAA: u16 = 28;

/// One name's last answer, as a resolvers section gave it (the text names the server).
type Answer = (Result<Vec<IpAddr>, DnsStatus>, String);

/// A name's last answer and when it came, behind the lock its next question is asked under.
type LastAnswer = Arc<tokio::sync::Mutex<Option<(Instant, Answer)>>>;

/// The answers the servers of one name share (a `server-template`'s, or plain servers naming
/// the same host): one query per name, section and family preference per `hold valid`, as
/// HAProxy's resolutions are shared, instead of one per server.
#[derive(Default)]
pub(super) struct SharedAnswers {
    /// By resolvers section, lower-cased name, and IPv4 preference.
    names: Mutex<HashMap<(String, String, bool), LastAnswer>>,
}

impl SharedAnswers {
    /// The name's answer: a recent one (younger than half the wait that follows it) as it is,
    /// else a new query, which the other servers of the name wait for rather than repeat.
    async fn ask(&self, r: &ResolversConfig, fqdn: &str, prefer_v4: bool, id: u16) -> Answer {
        let key = (r.name.clone(), fqdn.to_ascii_lowercase(), prefer_v4);
        let slot = self
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default()
            .clone();
        let mut last = slot.lock().await;
        if let Some((at, answer)) = last.as_ref() {
            let wait = match answer.0 {
                Ok(_) => r.hold_valid,
                Err(_) => r.timeout_resolve,
            };
            if at.elapsed() < wait / 2 {
                return answer.clone();
            }
        }
        let answer = resolve(r, fqdn, prefer_v4, id).await;
        *last = Some((Instant::now(), answer.clone()));
        answer
    }
}

/// Resolves `srv`'s name forever (until the server is deleted).
pub(super) async fn resolve_loop(
    reg: Arc<Registry>,
    srv: Arc<Server>,
    r: ResolversConfig,
    shared: Arc<SharedAnswers>,
) {
    let Some(fqdn) = srv.params.fqdn.clone() else {
        return;
    };
    // HAProxy keeps a valid answer for `hold <status>` after it, whatever fails meanwhile;
    // the resolution's creation counts as one (an address from libc or the state file is
    // kept through a failing first query, as HAProxy sets last_valid at creation)
    let mut last_valid = Instant::now();
    let mut id: u16 = (std::process::id() as u16) ^ (srv.puid as u16).rotate_left(7);
    loop {
        if srv.deleted() {
            return;
        }
        id = id.wrapping_add(0x9e37);
        let (outcome, by) = shared
            .ask(&r, &fqdn, srv.params.resolve_prefer_v4, id)
            .await;
        let next = match outcome {
            Ok(mut ips) => {
                last_valid = Instant::now();
                let outcome = match (srv.params.template_slot, srv.params.allow_dup_ip) {
                    (Some(k), _) => {
                        ips.sort();
                        ips.dedup();
                        pick(&reg, &srv, &fqdn, Some(k as usize), &ips)
                    }
                    // HAProxy's default for a plain server too: an address no other server
                    // of the name holds (`resolve-opts prevent-dup-ip`)
                    (None, false) => pick(&reg, &srv, &fqdn, None, &ips),
                    // `allow-dup-ip`: keep the current address while it is still among the
                    // answers
                    (None, true) => {
                        let cur = srv.addr().ip();
                        Ok(if ips.contains(&cur) { cur } else { ips[0] })
                    }
                };
                if outcome.is_ok() || !srv.admin().has(crate::model::AdminFlags::RMAINT) {
                    let _ = reg.apply(Command::Resolved {
                        server: srv.clone(),
                        outcome,
                        by,
                    });
                }
                r.hold_valid
            }
            Err(status) => {
                let hold = match status {
                    DnsStatus::Nx => r.hold_nx,
                    DnsStatus::Timeout => r.hold_timeout,
                    DnsStatus::Refused => r.hold_refused,
                    _ => r.hold_other,
                };
                // a server never resolved is in maintenance already; one that was keeps its
                // address until the hold after its last valid answer runs out
                if last_valid.elapsed() >= hold {
                    let _ = reg.apply(Command::Resolved {
                        server: srv.clone(),
                        outcome: Err(status),
                        by,
                    });
                }
                r.timeout_resolve
            }
        };
        tokio::time::sleep(next).await;
    }
}

/// The address a server takes from `ips` (a template's sorted): the servers of one name in a
/// backend hold one address each, as HAProxy fills them unless `allow-dup-ip`. A server keeps
/// its address while the answer still has it (its health and runtime weight stay with that
/// host); one without takes its template slot's address when free, else the first one no
/// other server of the name holds; those left without one wait in maintenance.
///
/// No two servers take the same address: every resolution runs on the check thread, and the
/// address picked is applied before that thread runs anything else.
fn pick(
    reg: &Registry,
    srv: &Server,
    fqdn: &str,
    slot: Option<usize>,
    ips: &[IpAddr],
) -> Result<IpAddr, DnsStatus> {
    let held: Vec<IpAddr> = reg
        .proxy_at(srv.proxy_index)
        .map(|p| p.servers())
        .into_iter()
        .flat_map(|list| list.iter().cloned().collect::<Vec<_>>())
        .filter(|o| {
            o.key != srv.key
                && o.params
                    .fqdn
                    .as_deref()
                    .is_some_and(|f| f.eq_ignore_ascii_case(fqdn))
        })
        .filter(|o| !o.admin().has(crate::model::AdminFlags::RMAINT))
        .filter(|_| !srv.params.allow_dup_ip)
        .map(|o| o.addr().ip())
        .collect();
    let free = |ip: &IpAddr| !held.contains(ip);
    let cur = srv.addr().ip();
    if !srv.admin().has(crate::model::AdminFlags::RMAINT) && ips.contains(&cur) && free(&cur) {
        return Ok(cur);
    }
    slot.and_then(|k| ips.get(k))
        .filter(|ip| free(ip))
        .or_else(|| ips.iter().find(|ip| free(ip)))
        .copied()
        .ok_or(DnsStatus::NoIp)
}

/// One resolution: the addresses of the preferred family (else the other one), or why none;
/// and which name server answered.
async fn resolve(
    r: &ResolversConfig,
    fqdn: &str,
    prefer_v4: bool,
    id: u16,
) -> (Result<Vec<IpAddr>, DnsStatus>, String) {
    let order = if prefer_v4 { [A, AAAA] } else { [AAAA, A] };
    let mut last = (Err(DnsStatus::Timeout), r.name.clone());
    for qtype in order {
        let (res, by) = ask(r, fqdn, qtype, id).await;
        match res {
            Ok(ips) if !ips.is_empty() => return (Ok(ips), by),
            // no record of this type: try the other one
            Ok(_) => last = (Err(DnsStatus::Other), by),
            Err(DnsStatus::Nx) => return (Err(DnsStatus::Nx), by),
            Err(e) => last = (Err(e), by),
        }
    }
    last
}

/// Asks every name server for `qtype` records, `resolve_retries` rounds, `timeout retry` apart.
async fn ask(
    r: &ResolversConfig,
    fqdn: &str,
    qtype: u16,
    id: u16,
) -> (Result<Vec<IpAddr>, DnsStatus>, String) {
    let Some(query) = build_query(id, fqdn, qtype, r.accepted_payload_size) else {
        return (Err(DnsStatus::Other), r.name.clone());
    };
    let mut socks = Vec::new();
    for (name, addr) in &r.nameservers {
        let bind: SocketAddr = if addr.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        if let Ok(s) = UdpSocket::bind(bind).await {
            if s.connect(addr).await.is_ok() {
                socks.push((format!("{}/{name}", r.name), s));
            }
        }
    }
    if socks.is_empty() {
        return (Err(DnsStatus::Other), r.name.clone());
    }
    let mut refused = None;
    let mut nx = None;
    for _ in 0..r.resolve_retries.max(1) {
        for (_, s) in &socks {
            let _ = s.send(&query).await;
        }
        let deadline = tokio::time::Instant::now() + r.timeout_retry;
        // the name servers still worth waiting for in this round (one that errs, say a refused
        // port, is dropped; the others may still answer)
        let mut live: Vec<usize> = (0..socks.len()).collect();
        while !live.is_empty() {
            let recv = futures_select(live.iter().map(|&i| {
                let (by, s) = &socks[i];
                async move {
                    let mut buf = vec![0u8; usize::from(r.accepted_payload_size).max(512)];
                    let r = s.recv(&mut buf).await.map(|n| {
                        buf.truncate(n);
                        (by.clone(), buf)
                    });
                    (i, r)
                }
            }));
            match tokio::time::timeout_at(deadline, recv).await {
                Err(_) => break,
                Ok((i, Err(_))) => live.retain(|&j| j != i),
                Ok((i, Ok((by, buf)))) => match parse_answer(&buf, id, qtype) {
                    Some(Ok(ips)) => return (Ok(ips), by),
                    // HAProxy waits for every name server before a failure counts
                    Some(Err(DnsStatus::Refused)) => {
                        refused = Some(by);
                        live.retain(|&j| j != i);
                    }
                    Some(Err(DnsStatus::Nx)) => {
                        nx = Some(by);
                        live.retain(|&j| j != i);
                    }
                    Some(Err(_)) => live.retain(|&j| j != i),
                    // not our answer (an old id): keep waiting
                    None => {}
                },
            }
        }
        if let Some(by) = nx.take() {
            return (Err(DnsStatus::Nx), by);
        }
        // every name server failed at once: the round still lasts `timeout retry`
        tokio::time::sleep_until(deadline).await;
    }
    match refused {
        Some(by) => (Err(DnsStatus::Refused), by),
        None => (Err(DnsStatus::Timeout), r.name.clone()),
    }
}

/// The first of several futures to complete.
async fn futures_select<T>(futs: impl Iterator<Item = impl std::future::Future<Output = T>>) -> T {
    let mut futs: Vec<_> = futs.map(Box::pin).collect();
    std::future::poll_fn(move |cx| {
        for f in futs.iter_mut() {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(cx) {
                return std::task::Poll::Ready(v);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// A recursive query for `name`'s `qtype` records, announcing `payload` bytes of answer with
/// an EDNS0 OPT record as HAProxy does; `None` for a name DNS cannot carry.
pub(crate) fn build_query(id: u16, name: &str, qtype: u16, payload: u16) -> Option<Vec<u8>> {
    let mut q = Vec::with_capacity(48 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00]); // recursion desired
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 1]); // one question, one additional (OPT)
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]); // class IN
                                  // OPT: root name, type 41, the payload size as class, no extended flags, no options
    q.extend_from_slice(&[0, 0, 41]);
    q.extend_from_slice(&payload.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    Some(q)
}

/// The addresses in an answer to query `id`: `None` when it is not that answer, else the
/// records of `qtype` (CNAMEs are followed by the server: their targets' records come along),
/// or the failure its code says.
pub(crate) fn parse_answer(
    b: &[u8],
    id: u16,
    qtype: u16,
) -> Option<Result<Vec<IpAddr>, DnsStatus>> {
    if b.len() < 12 || u16::from_be_bytes([b[0], b[1]]) != id || b[2] & 0x80 == 0 {
        return None;
    }
    // a truncated answer is refused, as HAProxy refuses it (a larger
    // `accepted_payload_size` lets the whole answer through)
    if b[2] & 0x02 != 0 {
        return Some(Err(DnsStatus::Other));
    }
    match b[3] & 0x0f {
        0 => {}
        3 => return Some(Err(DnsStatus::Nx)),
        5 => return Some(Err(DnsStatus::Refused)),
        _ => return Some(Err(DnsStatus::Other)),
    }
    let qd = u16::from_be_bytes([b[4], b[5]]);
    let an = u16::from_be_bytes([b[6], b[7]]);
    let mut at = 12;
    for _ in 0..qd {
        at = skip_name(b, at)? + 4;
    }
    let mut ips = Vec::new();
    for _ in 0..an {
        at = skip_name(b, at)?;
        let head = b.get(at..at + 10)?;
        let rtype = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[8], head[9]]));
        let data = b.get(at + 10..at + 10 + len)?;
        match (rtype, qtype, len) {
            (A, A, 4) => ips.push(IpAddr::V4(Ipv4Addr::new(
                data[0], data[1], data[2], data[3],
            ))),
            (AAAA, AAAA, 16) => {
                let mut o = [0u8; 16];
                o.copy_from_slice(data);
                ips.push(IpAddr::V6(Ipv6Addr::from(o)));
            }
            _ => {}
        }
        at += 10 + len;
    }
    Some(Ok(ips))
}

/// Skips a (possibly compressed) name: the offset after it.
fn skip_name(b: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *b.get(at)?;
        if len & 0xc0 == 0xc0 {
            return Some(at + 2);
        }
        if len == 0 {
            return Some(at + 1);
        }
        at += 1 + usize::from(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer to `q` with the given A records (a CNAME first, as resolvers send them).
    fn answer(q: &[u8], ips: &[[u8; 4]], rcode: u8) -> Vec<u8> {
        // the question, without the query's OPT record (11 bytes)
        let mut a = q[..q.len() - 11].to_vec();
        a[11] = 0;
        a[2] |= 0x80;
        a[3] = 0x80 | rcode;
        a[7] = (ips.len() + 1) as u8;
        // CNAME pointing elsewhere (compressed owner name: the question's)
        a.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 12]);
        for ip in ips {
            a.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
            a.extend_from_slice(ip);
        }
        a
    }

    #[test]
    fn answers_parse_and_odd_ones_are_told_apart() {
        let q = build_query(7, "app.example.", A, 4096).unwrap();
        // EDNS0: one additional record, OPT announcing 4096 bytes
        assert_eq!(q[11], 1);
        assert_eq!(&q[q.len() - 11..], &[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
        let ips = parse_answer(&answer(&q, &[[10, 0, 0, 1], [10, 0, 0, 2]], 0), 7, A);
        assert_eq!(
            ips,
            Some(Ok(vec![
                "10.0.0.1".parse().unwrap(),
                "10.0.0.2".parse().unwrap()
            ]))
        );
        assert_eq!(
            parse_answer(&answer(&q, &[], 3), 7, A),
            Some(Err(DnsStatus::Nx))
        );
        assert_eq!(
            parse_answer(&answer(&q, &[], 5), 7, A),
            Some(Err(DnsStatus::Refused))
        );
        assert_eq!(parse_answer(&answer(&q, &[], 0), 8, A), None, "another id");
        assert_eq!(parse_answer(&q, 7, A), None, "a query, not an answer");
        assert_eq!(
            parse_answer(&answer(&q, &[[1, 2, 3, 4]], 0)[..20], 7, A),
            None
        );
        assert!(build_query(1, "a..b", A, 512).is_none());
        // truncated (TC): refused, as HAProxy refuses it
        let mut tc = answer(&q, &[[10, 0, 0, 1]], 0);
        tc[2] |= 0x02;
        assert_eq!(parse_answer(&tc, 7, A), Some(Err(DnsStatus::Other)));
    }
}
