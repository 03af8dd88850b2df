//! `core.tcp()`: a LuaSocket-like TCP client whose I/O yields to the engine's runtime.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use mlua::{MultiValue, UserData, UserDataMethods, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// The Socket object.
pub(crate) struct Socket(Rc<Mutex<SockState>>);

/// A plain or TLS byte stream.
trait Io: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Io for T {}

struct SockState {
    stream: Option<BufReader<Box<dyn Io>>>,
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
    timeout: Option<Duration>,
}

impl Socket {
    /// A new unconnected socket.
    pub(crate) fn new() -> Socket {
        Socket(Rc::new(Mutex::new(SockState {
            stream: None,
            peer: None,
            local: None,
            timeout: None,
        })))
    }
}

/// Connects (and for `tls`, handshakes); errors are LuaSocket-style words.
async fn open(
    st: &Rc<Mutex<SockState>>,
    addr: &str,
    port: Option<u16>,
    tls: bool,
) -> Result<(), String> {
    let unix_path = addr
        .strip_prefix("unix@")
        .or_else(|| addr.starts_with('/').then_some(addr));
    if let Some(path) = unix_path {
        if tls {
            return Err("SSL over unix sockets is not supported".into());
        }
        let mut s = st.lock().await;
        let t = s.timeout;
        let us = with_timeout(t, tokio::net::UnixStream::connect(path))
            .await
            .map_err(|e| {
                if e == "timeout" {
                    e.to_string()
                } else {
                    "connection refused".to_string()
                }
            })?;
        s.peer = None;
        s.local = None;
        s.stream = Some(BufReader::new(Box::new(us)));
        return Ok(());
    }
    let sa = resolve(addr, port).await?;
    let mut s = st.lock().await;
    let t = s.timeout;
    let tcp = with_timeout(t, TcpStream::connect(sa)).await.map_err(|e| {
        if e == "timeout" {
            e.to_string()
        } else {
            "connection refused".to_string()
        }
    })?;
    s.peer = tcp.peer_addr().ok();
    s.local = tcp.local_addr().ok();
    let io: Box<dyn Io> = if tls {
        let settings = super::engine::ctx()
            .map(|c| c.reg.global().httpclient.clone())
            .map_err(|e| e.to_string())?;
        let cfg = super::tls::client_config(&settings)?;
        let host = host_part(addr, port);
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host)
            .map_err(|e| e.to_string())?;
        let conn = tokio_rustls::TlsConnector::from(cfg);
        let tls = with_timeout(t, conn.connect(name, tcp))
            .await
            .map_err(|e| format!("SSL handshake failed ({e})"))?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    s.stream = Some(BufReader::new(io));
    Ok(())
}

/// The host part of `addr[, port]` (for TLS server names).
fn host_part(addr: &str, port: Option<u16>) -> String {
    let a = addr
        .strip_prefix("ipv4@")
        .or_else(|| addr.strip_prefix("ipv6@"))
        .unwrap_or(addr);
    let h = match port {
        Some(_) => a,
        None => a.rsplit_once(':').map(|(h, _)| h).unwrap_or(a),
    };
    h.trim_start_matches('[').trim_end_matches(']').to_string()
}

/// Parses `addr[, port]` in HAProxy's formats (`ipv4@`, `ipv6@`, `[v6]:p`, `host:port`).
async fn resolve(addr: &str, port: Option<u16>) -> Result<SocketAddr, String> {
    let a = addr
        .strip_prefix("ipv4@")
        .or_else(|| addr.strip_prefix("ipv6@"))
        .or_else(|| addr.strip_prefix("tcp@"))
        .unwrap_or(addr);
    if a.starts_with("abns@") || a.starts_with("fd@") {
        return Err("unsupported address family".into());
    }
    let (host, p) = match port {
        Some(p) => (
            a.trim_start_matches('[').trim_end_matches(']').to_string(),
            p,
        ),
        None => {
            let (h, p) = a.rsplit_once(':').ok_or("missing port")?;
            let p = p.parse::<u16>().map_err(|_| "invalid port".to_string())?;
            (
                h.trim_start_matches('[').trim_end_matches(']').to_string(),
                p,
            )
        }
    };
    if let Ok(ip) = host.parse() {
        return Ok(SocketAddr::new(ip, p));
    }
    let found = tokio::net::lookup_host((host.as_str(), p))
        .await
        .map_err(|e| e.to_string())?
        .next();
    found.ok_or_else(|| "can't resolve".to_string())
}

async fn with_timeout<T>(
    t: Option<Duration>,
    f: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, &'static str> {
    match t {
        Some(t) => match tokio::time::timeout(t, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err("closed"),
            Err(_) => Err("timeout"),
        },
        None => f.await.map_err(|_| "closed"),
    }
}

/// A receive that met the end of the stream, as HAProxy's `hlua_socket_receive_yield` answers:
/// what was gathered (the prefix included) as the one result, or `nil, "connection closed."`
/// when that is nothing.
fn closed(lua: &mlua::Lua, buf: &[u8]) -> mlua::Result<MultiValue> {
    if buf.is_empty() {
        fail(lua, "connection closed.", None)
    } else {
        Ok(MultiValue::from_vec(vec![Value::String(
            lua.create_string(buf)?,
        )]))
    }
}

fn fail(lua: &mlua::Lua, err: &str, partial: Option<&[u8]>) -> mlua::Result<MultiValue> {
    let mut v = vec![Value::Nil, Value::String(lua.create_string(err)?)];
    if let Some(p) = partial {
        v.push(Value::String(lua.create_string(p)?));
    }
    Ok(MultiValue::from_vec(v))
}

impl UserData for Socket {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        for (name, tls) in [("connect", false), ("connect_ssl", true)] {
            m.add_async_method(
                name,
                move |lua, this, (addr, port): (String, Option<u16>)| {
                    let st = this.0.clone();
                    async move {
                        match open(&st, &addr, port, tls).await {
                            Ok(()) => Ok(MultiValue::from_vec(vec![Value::Integer(1)])),
                            Err(e) => fail(&lua, &e, None),
                        }
                    }
                },
            );
        }
        m.add_async_method(
            "send",
            |lua, this, (data, i, j): (mlua::String, Option<i64>, Option<i64>)| {
                let st = this.0.clone();
                let bytes = data.as_bytes().to_vec();
                async move {
                    let len = bytes.len() as i64;
                    let i = i.unwrap_or(1).max(1);
                    let j = j.unwrap_or(len).min(len);
                    let slice = if i <= j {
                        &bytes[(i - 1) as usize..j as usize]
                    } else {
                        &[][..]
                    };
                    let mut s = st.lock().await;
                    let t = s.timeout;
                    let Some(stream) = s.stream.as_mut() else {
                        let mut v = fail(&lua, "closed", None)?;
                        v.push_back(Value::Integer(i - 1));
                        return Ok(v);
                    };
                    let w = async {
                        let io = stream.get_mut();
                        io.write_all(slice).await?;
                        io.flush().await
                    };
                    match with_timeout(t, w).await {
                        Ok(()) => Ok(MultiValue::from_vec(vec![Value::Integer(j.max(i - 1))])),
                        Err(e) => {
                            let mut v = fail(&lua, e, None)?;
                            v.push_back(Value::Integer(i - 1));
                            Ok(v)
                        }
                    }
                }
            },
        );
        m.add_async_method(
            "receive",
            |lua, this, (pattern, prefix): (Option<Value>, Option<mlua::String>)| {
                let st = this.0.clone();
                let prefix = prefix.map(|p| p.as_bytes().to_vec()).unwrap_or_default();
                async move {
                    let mut s = st.lock().await;
                    let t = s.timeout;
                    let Some(stream) = s.stream.as_mut() else {
                        return closed(&lua, &prefix);
                    };
                    let mut buf = prefix;
                    let base = buf.len();
                    let pat = match &pattern {
                        None | Some(Value::Nil) => "*l".to_string(),
                        Some(Value::String(s)) => s.to_string_lossy(),
                        Some(Value::Integer(n)) => n.to_string(),
                        Some(Value::Number(n)) => (*n as i64).to_string(),
                        Some(_) => "*l".to_string(),
                    };
                    if pat.starts_with("*a") {
                        let r = with_timeout(t, stream.read_to_end(&mut buf)).await;
                        return match r {
                            // the stream ended: what it carried, or nil when nothing (an
                            // `*a` again after the end)
                            Ok(_) | Err("closed") => closed(&lua, &buf),
                            Err(e) => fail(&lua, e, Some(&buf)),
                        };
                    }
                    if pat.starts_with("*l") {
                        let r = with_timeout(t, stream.read_until(b'\n', &mut buf)).await;
                        return match r {
                            Ok(_) if buf.last() == Some(&b'\n') => {
                                buf.pop();
                                if buf.last() == Some(&b'\r') {
                                    buf.pop();
                                }
                                Ok(MultiValue::from_vec(vec![Value::String(
                                    lua.create_string(&buf)?,
                                )]))
                            }
                            Ok(_) | Err("closed") => closed(&lua, &buf),
                            Err(e) => fail(&lua, e, Some(&buf)),
                        };
                    }
                    let Ok(n) = pat.parse::<usize>() else {
                        return Err(mlua::Error::RuntimeError(format!(
                            "bad argument #1 to 'receive' (invalid pattern '{pat}')"
                        )));
                    };
                    buf.resize(base + n, 0);
                    let mut got = base;
                    while got < buf.len() {
                        let end = buf.len();
                        match with_timeout(t, stream.read(&mut buf[got..end])).await {
                            Ok(0) | Err("closed") => {
                                buf.truncate(got);
                                return closed(&lua, &buf);
                            }
                            Ok(k) => got += k,
                            Err(e) => {
                                buf.truncate(got);
                                return fail(&lua, e, Some(&buf));
                            }
                        }
                    }
                    Ok(MultiValue::from_vec(vec![Value::String(
                        lua.create_string(&buf)?,
                    )]))
                }
            },
        );
        m.add_method(
            "settimeout",
            |_, this, (secs, _mode): (f64, Option<String>)| {
                if let Ok(mut s) = this.0.try_lock() {
                    s.timeout = if secs > 0.0 {
                        Some(Duration::from_secs_f64(secs))
                    } else {
                        None
                    };
                }
                Ok(1)
            },
        );
        m.add_method("close", |_, this, ()| {
            if let Ok(mut s) = this.0.try_lock() {
                s.stream = None;
            }
            Ok(1)
        });
        for (name, peer) in [("getpeername", true), ("getsockname", false)] {
            m.add_method(name, move |lua, this, ()| {
                let s = this.0.try_lock().ok();
                let a = s.as_ref().filter(|s| s.stream.is_some()).and_then(|s| {
                    if peer {
                        s.peer
                    } else {
                        s.local
                    }
                });
                match a {
                    Some(a) => Ok(MultiValue::from_vec(vec![
                        Value::String(lua.create_string(a.ip().to_string())?),
                        Value::Integer(a.port().into()),
                    ])),
                    None => fail(lua, "not connected", None),
                }
            });
        }
        m.add_method("setoption", |_, _this, _a: MultiValue| Ok(true));
    }
}
