//! `server` and `default-server` arguments (also the Runtime API's `add server`).

use super::Ctx;
use crate::config::suggest::did_you_mean;
use crate::config::units::{parse_ip, parse_port, parse_socket_addr, parse_time, parse_u32};
use crate::config::{OnError, ServerConfig, ServerParams};

/// Server keywords harp understands (for did-you-mean and the README).
pub(crate) const KEYWORDS: &[&str] = &[
    "check",
    "no-check",
    "inter",
    "fastinter",
    "downinter",
    "rise",
    "fall",
    "weight",
    "maxconn",
    "maxqueue",
    "backup",
    "no-backup",
    "non-stick",
    "stick",
    "disabled",
    "enabled",
    "port",
    "addr",
    "slowstart",
    "on-marked-down",
    "on-marked-up",
    "send-proxy",
    "no-send-proxy",
    "send-proxy-v2",
    "no-send-proxy-v2",
    "check-send-proxy",
    "no-check-send-proxy",
    "source",
    "check-ssl",
    "no-check-ssl",
    "ssl",
    "no-ssl",
    "sni",
    "alpn",
    "crt",
    "ssl-reuse",
    "no-ssl-reuse",
    "ssl-min-ver",
    "ssl-max-ver",
    "ciphers",
    "ciphersuites",
    "crl-file",
    "verify",
    "ca-file",
    "check-sni",
    "verifyhost",
    "tfo",
    "tcp-ut",
    "no-verifyhost",
    "id",
    "resolvers",
    "init-addr",
    "resolve-prefer",
    "cookie",
    "minconn",
    "agent-check",
    "no-agent-check",
    "agent-port",
    "agent-inter",
    "agent-addr",
    "agent-send",
    "track",
];

/// HAProxy server keywords that need a feature harp does not have: refused clearly.
const UNSUPPORTED: &[&str] = &[
    "redir",
    "proto",
    "namespace",
    "usesrc",
    "check-proto",
    "check-alpn",
];

/// Parses `<addr>:<port> [keywords...]` for server `name` on top of `defaults`.
pub(crate) fn parse_server(
    name: &str,
    words: &[String],
    defaults: &ServerParams,
    ctx: &mut Ctx<'_>,
) -> Result<ServerConfig, String> {
    let Some(addr_text) = words.first() else {
        return Err(format!(
            "'server {name}' : missing address (expects <address>:<port>)."
        ));
    };
    let mut params = defaults.clone();
    params.id = None;
    params.forced_id = false;
    apply_keywords(&mut params, &words[1..], false, ctx)
        .map_err(|e| format!("'server {name}' : {e}"))?;
    let (host, port) = crate::config::units::server_host_port(addr_text, "server")
        .map_err(|e| format!("'server {name}' : {e}"))?;
    params.fqdn = None;
    params.unresolved = false;
    let addr = if host.is_empty() || host == "*" || host.parse::<std::net::IpAddr>().is_ok() {
        parse_socket_addr(addr_text, "server").map_err(|e| format!("'server {name}' : {e}"))?
    } else {
        // a name: `init-addr` says how to find its first address (HAProxy's `last,libc`)
        params.fqdn = Some(host.clone());
        let methods = params.init_addr.clone().unwrap_or(vec![
            crate::config::InitAddr::Last,
            crate::config::InitAddr::Libc,
        ]);
        let mut found = None;
        let mut libc_err = None;
        for m in methods {
            match m {
                crate::config::InitAddr::Last => {}
                crate::config::InitAddr::Libc => match parse_socket_addr(addr_text, "server") {
                    Ok(a) => {
                        found = Some(a);
                        break;
                    }
                    Err(e) => libc_err = Some(e),
                },
                crate::config::InitAddr::None => {
                    params.unresolved = true;
                    found = Some(std::net::SocketAddr::new(
                        std::net::Ipv4Addr::UNSPECIFIED.into(),
                        port,
                    ));
                    break;
                }
                crate::config::InitAddr::Ip(ip) => {
                    found = Some(std::net::SocketAddr::new(ip, port));
                    break;
                }
            }
        }
        found.ok_or_else(|| {
            format!(
                "'server {name}' : {}",
                libc_err
                    .unwrap_or_else(|| format!("no method found to resolve address '{addr_text}'"))
            )
        })?
    };
    // HAProxy's check_config_validity: a `minconn` above `maxconn` (or alone) becomes the
    // limit; without one, `minconn` is `maxconn` (a static limit)
    if params.minconn > params.maxconn {
        params.maxconn = params.minconn;
    } else if params.minconn == 0 {
        params.minconn = params.maxconn;
    }
    if params.check && params.track.is_some() {
        return Err("unable to enable checks and tracking at the same time!".into());
    }
    if params.agent_check && params.agent_port.is_none() {
        // HAProxy's words, and as there a fatal error
        return Err(format!(
            "server {name} does not have agent port. Agent check has been disabled."
        ));
    }
    Ok(ServerConfig {
        name: name.to_string(),
        addr,
        params,
        location: ctx.loc.clone(),
    })
}

/// Applies server keywords to `p`. `default_server`: `id` is not allowed there.
pub(crate) fn apply_keywords(
    p: &mut ServerParams,
    words: &[String],
    default_server: bool,
    ctx: &mut Ctx<'_>,
) -> Result<(), String> {
    let mut i = 0;
    while i < words.len() {
        let kw = words[i].as_str();
        let val = || {
            words
                .get(i + 1)
                .map(String::as_str)
                .ok_or_else(|| format!("'{kw}' expects an argument."))
        };
        let time = || parse_time(val()?, kw);
        // versions and ciphers: the same keywords as on bind lines
        if let Some(n) = p.tls_tuning.keyword(words, i)? {
            i += n;
            continue;
        }
        let mut used = 2;
        match kw {
            "check" => {
                p.check = true;
                used = 1;
            }
            "no-check" => {
                p.check = false;
                used = 1;
            }
            "backup" => {
                p.backup = true;
                used = 1;
            }
            "no-backup" => {
                p.backup = false;
                used = 1;
            }
            // `non-stick`: `stick` rules store no client for this server; `stick` undoes it
            "non-stick" | "stick" => {
                p.non_stick = kw == "non-stick";
                used = 1;
            }
            "send-proxy" | "no-send-proxy" => {
                p.send_proxy = kw == "send-proxy";
                used = 1;
            }
            "send-proxy-v2" | "no-send-proxy-v2" => {
                p.send_proxy_v2 = kw == "send-proxy-v2";
                used = 1;
            }
            "check-ssl" | "no-check-ssl" => {
                p.check_ssl = kw == "check-ssl";
                used = 1;
            }
            "verify" => {
                p.verify = Some(match val()? {
                    "none" => false,
                    "required" => true,
                    o => return Err(format!("'verify' : unknown verify method '{o}', only 'none' and 'required' are supported")),
                });
            }
            "ca-file" => p.ca_file = Some(std::path::PathBuf::from(val()?)),
            "check-sni" => p.check_sni = Some(val()?.to_string()),
            "verifyhost" => p.verifyhost = Some(val()?.to_string()),
            "no-verifyhost" => {
                p.verifyhost = None;
                used = 1;
            }
            "source" => {
                let (src, n) = crate::config::units::parse_source(&words[i + 1..], kw)?;
                p.source = Some(src);
                used = 1 + n;
            }
            "check-send-proxy" | "no-check-send-proxy" => {
                p.check_send_proxy = kw == "check-send-proxy";
                used = 1;
            }
            "disabled" => {
                p.disabled = true;
                used = 1;
            }
            "enabled" => {
                p.disabled = false;
                used = 1;
            }
            "inter" => p.inter = nonzero(time()?, kw)?,
            "fastinter" => p.fastinter = Some(nonzero(time()?, kw)?),
            "downinter" => p.downinter = Some(nonzero(time()?, kw)?),
            "slowstart" => p.slowstart = Some(time()?),
            "rise" => p.rise = parse_u32(val()?, kw, 1, i32::MAX as u32)?,
            "fall" => p.fall = parse_u32(val()?, kw, 1, i32::MAX as u32)?,
            "weight" => p.weight = parse_u32(val()?, kw, 0, 256)?,
            "maxconn" => p.maxconn = parse_u32(val()?, kw, 0, i32::MAX as u32)?,
            "maxqueue" => p.maxqueue = parse_u32(val()?, kw, 0, i32::MAX as u32)?,
            "port" => p.check_port = Some(parse_port(val()?, kw)?),
            "agent-check" => {
                p.agent_check = true;
                used = 1;
            }
            "no-agent-check" => {
                p.agent_check = false;
                used = 1;
            }
            "agent-port" => p.agent_port = Some(parse_port(val()?, kw)?),
            "agent-addr" => p.agent_addr = Some(parse_ip(val()?, kw)?),
            "agent-inter" => p.agent_inter = Some(nonzero(time()?, kw)?),
            "agent-send" => p.agent_send = Some(val()?.to_string()),
            "track" => {
                let Some(t) = words.get(i + 1).filter(|t| !t.is_empty()) else {
                    return Err("'track' expects [<proxy>/]<server> as argument.".into());
                };
                p.track = Some(t.clone());
            }
            "addr" => p.check_addr = Some(parse_ip(val()?, kw)?),
            "on-marked-down" => match val()? {
                "shutdown-sessions" => p.shutdown_on_down = true,
                o => {
                    return Err(format!(
                        "'on-marked-down' : harp only supports 'shutdown-sessions', got '{o}'."
                    ))
                }
            },
            "on-marked-up" => match val()? {
                "shutdown-backup-sessions" => p.shutdown_backup_on_up = true,
                o => {
                    return Err(format!(
                        "'on-marked-up' : harp only supports 'shutdown-backup-sessions', got '{o}'."
                    ))
                }
            },
            "id" if default_server => return Err("'id' is not allowed on 'default-server'.".into()),
            "id" => {
                p.id = Some(parse_u32(val()?, kw, 1, i32::MAX as u32)?);
                p.forced_id = true;
            }
            "resolvers" => p.resolvers = Some(val()?.to_string()),
            "init-addr" => {
                let mut methods = Vec::new();
                for m in val()?.split(',') {
                    methods.push(match m {
                        "last" => crate::config::InitAddr::Last,
                        "libc" => crate::config::InitAddr::Libc,
                        "none" => crate::config::InitAddr::None,
                        ip => crate::config::InitAddr::Ip(ip.parse().map_err(|_| {
                            format!("'init-addr' : unknown method '{ip}' (expects 'last', 'libc', 'none' or an IP address).")
                        })?),
                    });
                }
                p.init_addr = Some(methods);
            }
            "resolve-opts" => {
                for o in val()?.split(',') {
                    match o {
                        "allow-dup-ip" => p.allow_dup_ip = true,
                        "prevent-dup-ip" => p.allow_dup_ip = false,
                        // SRV record weights: harp asks A/AAAA only
                        "ignore-weight" => {}
                        _ => {
                            return Err(format!(
                                "'resolve-opts' : unknown resolve-opts option '{o}', supported methods are 'allow-dup-ip', 'ignore-weight', and 'prevent-dup-ip'."
                            ))
                        }
                    }
                }
            }
            "resolve-prefer" => {
                p.resolve_prefer_v4 = match val()? {
                    "ipv4" => true,
                    "ipv6" => false,
                    o => {
                        return Err(format!(
                            "'resolve-prefer' expects 'ipv4' or 'ipv6', got '{o}'."
                        ))
                    }
                };
            }
            "cookie" | "pool-max-conn" | "pool-purge-delay" | "max-reuse" | "ws" | "log-proto"
            | "pool-low-conn" | "pool-conn-name" => {
                val()?;
                ctx.warn(format!(
                    "server keyword '{kw}' has no effect in harp; ignored."
                ));
            }
            "observe" => match val()? {
                "none" => p.observe_layer4 = false,
                "layer4" => p.observe_layer4 = true,
                // HAProxy: an alert that does not fail the configuration
                "layer7" => ctx.warn(
                    "'layer7' can only be used in http proxies; 'observe' ignored.".to_string(),
                ),
                o => {
                    return Err(format!(
                        "'observe' expects one of 'none', 'layer4', 'layer7' but got '{o}'"
                    ))
                }
            },
            "error-limit" => {
                let v = val().map_err(|_| "'error-limit' expects an integer argument.".to_string())?;
                // HAProxy reads it with atoi: the leading digits count
                let digits: String = v.chars().take_while(|c| c.is_ascii_digit()).collect();
                p.error_limit = match digits.parse::<u32>() {
                    Ok(n) if n > 0 => n,
                    _ => return Err("error-limit has to be > 0.".to_string()),
                }
            }
            "on-error" => {
                p.on_error = match val()? {
                    "fastinter" => OnError::FastInter,
                    "fail-check" => OnError::FailCheck,
                    "sudden-death" => OnError::SuddenDeath,
                    "mark-down" => OnError::MarkDown,
                    o => {
                        return Err(format!(
                            "'on-error' expects one of 'fastinter', 'fail-check', 'sudden-death' or 'mark-down' but got '{o}'"
                        ))
                    }
                }
            }
            "minconn" => p.minconn = parse_u32(val()?, kw, 0, i32::MAX as u32)?,
            "proxy-v2-options" => {
                // HAProxy's list; `cert-sig`, `cert-key` and `crc32c` are not sent
                let mut ignored = Vec::new();
                for o in val()?.split(',') {
                    match o {
                        "unique-id" => p.pp2_unique_id = true,
                        "ssl" => p.pp2_tls.ssl = true,
                        // (HAProxy's companions of `ssl`: they turn it on)
                        "cert-cn" => (p.pp2_tls.ssl, p.pp2_tls.cert_cn) = (true, true),
                        "ssl-cipher" => (p.pp2_tls.ssl, p.pp2_tls.cipher) = (true, true),
                        "authority" => p.pp2_tls.authority = true,
                        "cert-sig" | "cert-key" | "crc32c" => ignored.push(o),
                        _ => return Err(format!("'{o}' : proxy v2 option not implemented.")),
                    }
                }
                if !ignored.is_empty() {
                    ctx.warn(format!(
                        "server keyword '{kw}' : '{}' not supported by harp (no certificate algorithms, no CRC are sent); ignored.",
                        ignored.join(",")
                    ));
                }
            }
            "tfo" => {
                // HAProxy sends a SYN with data only on a first attempt whose request is in its
                // buffer; harp connects before the client's bytes are in hand, where Fast Open
                // would let a dead server look connected and skip retries and redispatch
                ctx.warn(
                    "server keyword 'tfo' is not supported by harp (connections are opened before \
                     the client's data is read, where TCP Fast Open would hide a dead server from \
                     retries); ignored."
                        .to_string(),
                );
                used = 1;
            }
            "tcp-ut" => p.tcp_ut = Some(time()?),
            "ssl" | "no-ssl" => {
                p.ssl = kw == "ssl";
                used = 1;
            }
            "sni" => {
                let expr = val()?;
                let site = (ctx.loc.file.clone(), ctx.loc.line);
                let f = crate::rules::Fetch::parse_at(expr, "", &site)
                    .map_err(|e| format!("'sni' : failed to parse sni expression '{expr}' : {e}"))?;
                p.sni = Some(f);
            }
            "alpn" => {
                let v = val()?;
                if v.split(',').any(|a| a.is_empty() || a.len() > 255) {
                    return Err(format!("'alpn' : invalid protocol list '{v}'"));
                }
                p.alpn = v.split(',').map(|a| a.as_bytes().to_vec()).collect();
            }
            "crt" => p.crt = Some(std::path::PathBuf::from(val()?)),
            "crl-file" => p.crl_file = Some(std::path::PathBuf::from(val()?)),
            // OpenSSL tuning rustls has no knob for
            "curves" | "sigalgs" | "client-sigalgs" | "npn" => {
                val()?;
                ctx.warn(format!(
                    "server keyword '{kw}' is not supported by harp's TLS (rustls); ignored."
                ));
            }
            "allow-0rtt" | "no-tls-tickets" | "tls-tickets" => {
                ctx.warn(format!(
                    "server keyword '{kw}' is not supported by harp's TLS (rustls); ignored."
                ));
                used = 1;
            }

            // rustls resumes sessions with a server on its own; nothing to turn on or off
            "ssl-reuse" | "no-ssl-reuse" => used = 1,
            _ if UNSUPPORTED.contains(&kw) => {
                return Err(format!("keyword '{kw}' is not supported by harp."));
            }
            _ => {
                return Err(match did_you_mean(kw, KEYWORDS) {
                    Some(s) => format!("unknown keyword '{kw}'; did you mean '{s}'?"),
                    None => format!("unknown keyword '{kw}'."),
                })
            }
        }
        i += used;
    }
    Ok(())
}

fn nonzero(d: std::time::Duration, kw: &str) -> Result<std::time::Duration, String> {
    if d.is_zero() {
        Err(format!("'{kw}' has to be > 0."))
    } else {
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Location, ProxyProtocol};
    use std::time::Duration;

    fn w(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn srv(s: &str) -> Result<ServerConfig, String> {
        let loc = Location::default();
        let mut warnings = Vec::new();
        parse_server(
            "s1",
            &w(s),
            &ServerParams::default(),
            &mut Ctx {
                loc: &loc,
                warnings: &mut warnings,
                bind_tls: None,
            },
        )
    }

    #[test]
    fn all_keywords() {
        let s = srv(
            "127.0.0.1:8080 check inter 300ms fastinter 100ms downinter 5s rise 1 fall 2 weight 50 maxconn 10 \
             maxqueue 5 backup disabled port 9000 addr 127.0.0.2 slowstart 10s on-marked-down shutdown-sessions on-marked-up shutdown-backup-sessions id 7",
        )
        .unwrap();
        let p = &s.params;
        assert_eq!(s.addr, "127.0.0.1:8080".parse().unwrap());
        assert!(p.check && p.backup && p.disabled && p.shutdown_on_down && p.forced_id);
        assert!(p.shutdown_backup_on_up);
        assert_eq!(p.inter, Duration::from_millis(300));
        assert_eq!(p.fastinter, Some(Duration::from_millis(100)));
        assert_eq!(p.downinter, Some(Duration::from_secs(5)));
        assert_eq!(
            (p.rise, p.fall, p.weight, p.maxconn, p.maxqueue),
            (1, 2, 50, 10, 5)
        );
        assert_eq!(p.check_port, Some(9000));
        assert_eq!(p.check_addr, Some("127.0.0.2".parse().unwrap()));
        assert_eq!(p.slowstart, Some(Duration::from_secs(10)));
        assert_eq!(p.id, Some(7));
    }

    #[test]
    fn send_proxy_versions() {
        let v = |s: &str| srv(s).unwrap().params.proxy_protocol();
        assert_eq!(v("127.0.0.1:80"), None);
        assert_eq!(v("127.0.0.1:80 send-proxy"), Some(ProxyProtocol::V1));
        // as in HAProxy, v2 wins when both are set; `no-` clears what a default-server set
        assert_eq!(
            v("127.0.0.1:80 send-proxy send-proxy-v2"),
            Some(ProxyProtocol::V2)
        );
        assert_eq!(
            v("127.0.0.1:80 send-proxy-v2 send-proxy no-send-proxy-v2"),
            Some(ProxyProtocol::V1)
        );
        assert_eq!(v("127.0.0.1:80 send-proxy no-send-proxy"), None);
        assert!(srv("127.0.0.1:80 check-send-proxy").is_ok_and(|s| s.params.check_send_proxy));
    }

    #[test]
    fn errors() {
        assert!(srv("").unwrap_err().contains("missing address"));
        assert!(srv("127.0.0.1").unwrap_err().contains("missing port"));
        assert!(srv("127.0.0.1:0")
            .unwrap_err()
            .contains("between 1 and 65535"));
        assert!(srv("127.0.0.1:80 weight 257")
            .unwrap_err()
            .contains("between 0 and 256"));
        assert!(srv("127.0.0.1:80 weight")
            .unwrap_err()
            .contains("expects an argument"));
        assert!(srv("127.0.0.1:80 chek")
            .unwrap_err()
            .contains("did you mean 'check'?"));
        assert!(srv("127.0.0.1:80 redir http://x")
            .unwrap_err()
            .contains("not supported"));
        assert!(srv("127.0.0.1:80 ssl sni nosuchfetch")
            .unwrap_err()
            .contains("failed to parse sni expression 'nosuchfetch'"));
        assert!(srv("127.0.0.1:80 ssl verify none sni ssl_fc_sni alpn h2").is_ok());
        assert!(srv("127.0.0.1:80 inter 0").unwrap_err().contains("> 0"));
        assert!(srv("127.0.0.1:80 inter 30d")
            .unwrap_err()
            .contains("timer overflow"));
    }
}
