//! `core.httpclient()`: HTTP/HTTPS requests from scripts, on reqwest + rustls, honouring the
//! `httpclient.*` global settings (connect timeout, retries, CA file, verify, `prefer ipv4`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mlua::{Lua, Table, UserData, Value};

use super::engine::ctx;
use crate::config::{HttpClientSettings, IpFamily};

/// The HTTPClient object (stateless: one shared reqwest client per engine).
pub(crate) struct HttpClient;

/// Resolves host names with the configured family first (`httpclient.resolvers.prefer`).
struct PreferResolver(IpFamily);

impl reqwest::dns::Resolve for PreferResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let fam = self.0;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let mut addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            addrs.sort_by_key(|a| match fam {
                IpFamily::V4 => !a.is_ipv4(),
                IpFamily::V6 => !a.is_ipv6(),
            });
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

fn builder(s: &HttpClientSettings) -> Result<reqwest::ClientBuilder, String> {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        // HAProxy's httpclient names itself (`HTTPCLIENT_USERAGENT`) unless the script sets one
        .user_agent("HAProxy")
        .connect_timeout(s.timeout_connect)
        .danger_accept_invalid_certs(!s.ssl_verify);
    if let Some(f) = s.prefer {
        b = b.dns_resolver(Arc::new(PreferResolver(f)));
    }
    if let Some(path) = &s.ssl_ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("httpclient.ssl.ca-file {}: {e}", path.display()))?;
        for c in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string())? {
            b = b.add_root_certificate(c);
        }
    }
    Ok(b)
}

fn shared_client() -> Result<reqwest::Client, String> {
    let c = ctx().map_err(|e| e.to_string())?;
    if let Some(cl) = c.http.borrow().as_ref() {
        return Ok(cl.clone());
    }
    let cl = builder(&c.reg.global().httpclient)?
        .build()
        .map_err(|e| e.to_string())?;
    *c.http.borrow_mut() = Some(cl.clone());
    Ok(cl)
}

struct Req {
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    timeout: Option<Duration>,
    dst: Option<String>,
}

fn parse_req(method: &str, t: &Table) -> mlua::Result<Req> {
    let mut req = Req {
        url: String::new(),
        headers: Vec::new(),
        body: None,
        timeout: None,
        dst: None,
    };
    let mut have_url = false;
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, v) = pair?;
        let key = match &k {
            Value::String(s) => s.to_string_lossy(),
            _ => continue,
        };
        match key.as_str() {
            "url" => {
                if let Value::String(s) = v {
                    req.url = s.to_string_lossy();
                    have_url = true;
                }
            }
            "headers" => {
                if let Value::Table(h) = v {
                    for hp in h.pairs::<Value, Value>() {
                        let (name, vals) = hp?;
                        let (Value::String(name), Value::Table(vals)) = (name, vals) else {
                            continue;
                        };
                        for val in vals.sequence_values::<mlua::String>() {
                            req.headers
                                .push((name.to_string_lossy(), val?.to_string_lossy()));
                        }
                    }
                }
            }
            "body" => {
                if let Value::String(s) = v {
                    req.body = Some(s.as_bytes().to_vec());
                }
            }
            "timeout" => match v {
                Value::Integer(ms) => req.timeout = Some(Duration::from_millis(ms.max(0) as u64)),
                Value::Number(ms) => {
                    req.timeout = Some(Duration::from_secs_f64(ms.max(0.0) / 1000.0))
                }
                _ => {}
            },
            "dst" => {
                if let Value::String(s) = v {
                    req.dst = Some(s.to_string_lossy());
                }
            }
            other => {
                return Err(mlua::Error::RuntimeError(format!(
                    "'{other}' invalid parameter name"
                )))
            }
        }
    }
    if !have_url {
        return Err(mlua::Error::RuntimeError(format!(
            "'{method}' need a 'url' argument"
        )));
    }
    Ok(req)
}

/// Builds a client for one request carrying `dst` (the target overrides the URL's host).
fn dst_client(url: &str, dst: &str) -> Result<reqwest::Client, String> {
    let c = ctx().map_err(|e| e.to_string())?;
    if let Some(path) = dst.strip_prefix("unix@") {
        return builder(&c.reg.global().httpclient)?
            .unix_socket(std::path::PathBuf::from(path))
            .build()
            .map_err(|e| e.to_string());
    }
    let a = dst
        .strip_prefix("ipv4@")
        .or_else(|| dst.strip_prefix("ipv6@"))
        .unwrap_or(dst);
    let sa: SocketAddr = a.parse().map_err(|_| format!("unsupported dst '{dst}'"))?;
    let u = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    let host = u.host_str().unwrap_or("localhost").to_string();
    builder(&c.reg.global().httpclient)?
        .resolve(&host, sa)
        .build()
        .map_err(|e| e.to_string())
}

async fn perform(method: reqwest::Method, req: Req) -> Result<reqwest::Response, String> {
    let c = ctx().map_err(|e| e.to_string())?;
    let retries = c.reg.global().httpclient.retries;
    drop(c);
    let client = match &req.dst {
        Some(d) => dst_client(&req.url, d)?,
        None => shared_client()?,
    };
    let mut attempt = 0;
    loop {
        let mut b = client.request(method.clone(), &req.url);
        for (k, v) in &req.headers {
            b = b.header(k, v);
        }
        if let Some(body) = &req.body {
            b = b.body(body.clone());
        }
        if let Some(t) = req.timeout {
            b = b.timeout(t);
        }
        match b.send().await {
            Ok(r) => return Ok(r),
            Err(e) if e.is_connect() && attempt < retries => attempt += 1,
            Err(e) => return Err(e.to_string()),
        }
    }
}

async fn response_table(lua: &Lua, r: Result<reqwest::Response, String>) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let resp = match r {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(target: "lua", "httpclient: {e}");
            t.set("status", 0)?;
            t.set("reason", "")?;
            t.set("headers", lua.create_table()?)?;
            t.set("body", "")?;
            return Ok(t);
        }
    };
    let status = resp.status();
    let headers = lua.create_table()?;
    for (name, value) in resp.headers() {
        let key = name.as_str().to_ascii_lowercase();
        let arr: Table = match headers.get::<Value>(key.as_str())? {
            Value::Table(a) => a,
            _ => {
                let a = lua.create_table()?;
                headers.set(key.as_str(), a.clone())?;
                a
            }
        };
        // HAProxy stores the first value at index 0, the next ones at 1, 2, ...
        let mut n = 0i64;
        while !matches!(arr.raw_get::<Value>(n)?, Value::Nil) {
            n += 1;
        }
        arr.raw_set(n, lua.create_string(value.as_bytes())?)?;
    }
    let body = match resp.bytes().await {
        Ok(b) => b,
        Err(_) => {
            t.set("status", 0)?;
            t.set("reason", "")?;
            t.set("headers", headers)?;
            t.set("body", "")?;
            return Ok(t);
        }
    };
    t.set("status", status.as_u16())?;
    t.set("reason", status.canonical_reason().unwrap_or(""))?;
    t.set("headers", headers)?;
    t.set("body", lua.create_string(&body)?)?;
    Ok(t)
}

impl UserData for HttpClient {
    fn add_fields<F: mlua::UserDataFields<Self>>(f: &mut F) {
        for (name, key) in [
            ("get", "http.get"),
            ("head", "http.head"),
            ("put", "http.put"),
            ("post", "http.post"),
            ("delete", "http.delete"),
        ] {
            f.add_field_method_get(name, move |_, _this| super::engine::wrapped(key));
        }
    }
}

/// The raw request functions behind `HTTPClient:get/head/put/post/delete`, by wrapper key.
pub(crate) fn raw_methods(lua: &Lua) -> mlua::Result<Vec<(&'static str, mlua::Function)>> {
    let mut v = Vec::new();
    for (name, key, method) in [
        ("get", "http.get", reqwest::Method::GET),
        ("head", "http.head", reqwest::Method::HEAD),
        ("put", "http.put", reqwest::Method::PUT),
        ("post", "http.post", reqwest::Method::POST),
        ("delete", "http.delete", reqwest::Method::DELETE),
    ] {
        let f = lua.create_async_function(move |lua, (_this, t): (Value, Value)| {
            let method = method.clone();
            async move {
                let Value::Table(t) = t else {
                    return super::raising::outcome(
                        &lua,
                        Err(mlua::Error::RuntimeError(format!(
                            "'{name}' need a 'url' argument"
                        ))),
                    );
                };
                let req = match parse_req(name, &t) {
                    Ok(r) => r,
                    Err(e) => return super::raising::outcome(&lua, Err(e)),
                };
                let r = perform(method, req).await;
                let t = response_table(&lua, r).await?;
                super::raising::outcome(&lua, Ok(Value::Table(t)))
            }
        })?;
        v.push((key, f));
    }
    Ok(v)
}
