//! Helpers shared by the Lua tests: a recording HTTP webhook, a recording SMTP server, and a
//! deadline-based wait.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Waits until `cond` holds or the deadline passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// One request seen by the webhook.
#[derive(Debug, Clone)]
pub struct HttpReq {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A tiny HTTP/1.1 server answering 200 to everything (or never, for `/hang`), recording requests.
pub struct Webhook {
    pub port: u16,
    pub reqs: Arc<Mutex<Vec<HttpReq>>>,
}

impl Webhook {
    pub fn start() -> Webhook {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let reqs = Arc::new(Mutex::new(Vec::new()));
        let r = reqs.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(c) = c else { continue };
                let r = r.clone();
                std::thread::spawn(move || serve_http(c, r));
            }
        });
        Webhook { port, reqs }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn with_path(&self, path: &str) -> Vec<HttpReq> {
        self.reqs
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

fn serve_http(c: TcpStream, reqs: Arc<Mutex<Vec<HttpReq>>>) {
    let mut rd = BufReader::new(c.try_clone().unwrap());
    let mut w = c;
    loop {
        let mut line = String::new();
        if rd.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if rd.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end().to_string();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                if k == "content-length" {
                    len = v.parse().unwrap_or(0);
                }
                headers.push((k, v));
            }
        }
        let mut body = vec![0; len];
        if rd.read_exact(&mut body).is_err() {
            return;
        }
        let hang = path == "/hang";
        reqs.lock().unwrap().push(HttpReq {
            method,
            path,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        if hang {
            std::thread::sleep(Duration::from_secs(30));
            return;
        }
        let resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Test: a\r\nX-Test: b\r\n\r\nok";
        if w.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// An SMTP server recording each session's client lines.
pub struct Smtp {
    pub port: u16,
    pub sessions: Arc<Mutex<Vec<Vec<String>>>>,
}

impl Smtp {
    pub fn start() -> Smtp {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let s = sessions.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(c) = c else { continue };
                let s = s.clone();
                std::thread::spawn(move || serve_smtp(c, s));
            }
        });
        Smtp { port, sessions }
    }

    /// Completed sessions (ended with QUIT).
    pub fn done(&self) -> Vec<Vec<String>> {
        self.sessions
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.last().map(|l| l == "QUIT").unwrap_or(false))
            .cloned()
            .collect()
    }
}

fn serve_smtp(c: TcpStream, sessions: Arc<Mutex<Vec<Vec<String>>>>) {
    let mut rd = BufReader::new(c.try_clone().unwrap());
    let mut w = c;
    let mut lines = Vec::new();
    let _ = w.write_all(b"220 test ESMTP\r\n");
    let mut in_data = false;
    loop {
        let mut line = String::new();
        if rd.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if in_data {
            if line == "." {
                in_data = false;
                lines.push(".".to_string());
                let _ = w.write_all(b"250 2.0.0 queued\r\n");
            } else {
                lines.push(format!("DATA| {line}"));
            }
            continue;
        }
        lines.push(line.clone());
        let up = line.to_ascii_uppercase();
        let reply: &[u8] = if up.starts_with("HELO") || up.starts_with("EHLO") {
            b"250-test hello\r\n250 OK\r\n"
        } else if up.starts_with("MAIL FROM") || up.starts_with("RCPT TO") {
            b"250 OK\r\n"
        } else if up == "DATA" {
            in_data = true;
            b"354 go ahead\r\n"
        } else if up == "QUIT" {
            let _ = w.write_all(b"221 bye\r\n");
            break;
        } else {
            b"500 what?\r\n"
        };
        let _ = w.write_all(reply);
    }
    sessions.lock().unwrap().push(lines);
}
