//! `show peers [dict|-] [<section>]`: each section, its local peer and each remote peer
//! with its session and tables, laid out as HAProxy 2.6 prints them (pointers are harp's
//! own; the flags HAProxy prints in hex are its internal bits and shown as 0 here).

use std::fmt::Write;
use std::sync::Arc;
use std::time::Instant;

use super::shared::{Peer, Section, Status};

/// The status as `show peers` names it (`last_status=`).
fn status_name(s: Status) -> &'static str {
    match s {
        Status::None => "NONE",
        Status::Connecting => "CONN",
        Status::Handshake => "HSHK",
        Status::Established => "ESTA",
        Status::Refused(super::wire::STATUS_TRY_AGAIN) => "RETR",
        Status::Refused(super::wire::STATUS_ERR_PROTO) => "PROT",
        Status::Refused(super::wire::STATUS_ERR_VERSION) => "VERS",
        Status::Refused(super::wire::STATUS_ERR_HOST) => "NAME",
        Status::Refused(super::wire::STATUS_ERR_PEER) => "UNKN",
        Status::Refused(_) => "NONE",
    }
}

/// A duration as HAProxy's `human_time` prints it ("<NEVER>" for none).
fn human(d: Option<std::time::Duration>) -> String {
    let Some(d) = d else {
        return "<NEVER>".into();
    };
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h{}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d{}h", s / 86_400, (s % 86_400) / 3600)
    }
}

fn addr_of<T>(p: &T) -> usize {
    p as *const T as usize
}

/// The `show peers` text of `sections` (only the one named `only`, when given).
pub fn render(sections: &[Arc<Section>], only: Option<&str>) -> String {
    let mut out = String::new();
    for sec in sections
        .iter()
        .filter(|s| only.map_or(true, |n| s.name == n))
    {
        let ((y, mo, d, h, mi, s, _), _) = crate::logging::targets::civil_local(sec.started);
        let started = format!(
            "{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02}",
            crate::logging::targets::MONTHS[mo - 1]
        );
        let resync = match sec.resync_state() {
            super::shared::Resync::Wanted { until } => {
                human(Some(until.saturating_duration_since(Instant::now())))
            }
            _ => "<PAST>".into(),
        };
        let _ = writeln!(
            out,
            "0x{:x}: [{started}] id={} disabled=0 flags=0x0 resync_timeout={resync} task_calls=0",
            addr_of(&**sec),
            sec.name
        );
        // in the reverse of the lines' order, as HAProxy's list holds them
        for name in sec.names.iter().rev() {
            if *name == sec.local {
                let _ = writeln!(
                    out,
                    "  0x{:x}: id={}(local,inactive) addr={} last_status=NONE last_hdshk=<NEVER>",
                    addr_of(&sec.local),
                    sec.local,
                    sec.listen.map_or("-".into(), |a| a.to_string())
                );
                out.push_str(
                    "        reconnect=<NEVER> heartbeat=<NEVER> confirm=0 tx_hbt=0 rx_hbt=0 no_hbt=0 new_conn=0 proto_err=0 coll=0\n        flags=0x0\n",
                );
                tables(&mut out, sec, None);
            } else if let Some(p) = sec.peer(name) {
                peer(&mut out, sec, p);
            }
        }
    }
    out
}

fn peer(out: &mut String, sec: &Section, p: &Arc<Peer>) {
    let st = p.state();
    let now = Instant::now();
    // a session, or a connection on its way to becoming one
    let active = if st.session != 0 || matches!(st.status, Status::Connecting | Status::Handshake) {
        "active"
    } else {
        "inactive"
    };
    let _ = writeln!(
        out,
        "  0x{:x}: id={}(remote,{active}) addr={} last_status={} last_hdshk={}",
        addr_of(&**p),
        p.name,
        p.addr,
        status_name(st.status),
        human(st.last_hdshk.map(|t| now.saturating_duration_since(t)))
    );
    let _ = writeln!(
        out,
        "        reconnect={} heartbeat=<NEVER> confirm=0 tx_hbt={} rx_hbt={} no_hbt=0 new_conn={} proto_err={} coll={}",
        human(Some(st.reconnect_at.saturating_duration_since(now))),
        st.tx_hbt,
        st.rx_hbt,
        st.new_conn,
        st.proto_err,
        st.collisions
    );
    if st.session != 0 {
        let _ = writeln!(
            out,
            "        flags=0x0 appctx:0x{:x} st0=7 st1=0 task_calls=0 state=EST",
            st.session
        );
    } else {
        out.push_str("        flags=0x0\n");
    }
    let cursors = st.cursors.clone();
    drop(st);
    tables(out, sec, Some(&cursors));
}

fn tables(out: &mut String, sec: &Section, cursors: Option<&[super::shared::CursorView]>) {
    if sec.tables.is_empty() {
        out.push_str("        Dictionary cache not dumped (use \"show peers dict\")\n");
        return;
    }
    out.push_str("        shared tables:\n");
    for (i, t) in sec.tables.iter().enumerate() {
        let c = cursors.and_then(|c| c.get(i)).copied().unwrap_or_default();
        let _ = writeln!(
            out,
            "          0x{:x} local_id={} remote_id={} flags=0x0 remote_data=0x{:x}",
            addr_of(t) + i,
            t.define.id,
            c.remote_id,
            c.remote_data
        );
        let _ = writeln!(
            out,
            "              last_acked={} last_pushed={} last_get={} teaching_origin=0 update=0",
            c.last_acked, c.last_pushed as u32, c.last_get
        );
        let last = t.table.last_change() as u32;
        let _ = writeln!(
            out,
            "              table:0x{:x} id={} update={last} localupdate={last} commitupdate={last} refcnt=1",
            addr_of(&*t.table),
            t.table.name
        );
    }
    out.push_str("        Dictionary cache not dumped (use \"show peers dict\")\n");
}
