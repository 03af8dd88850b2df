//! Shared end-to-end test support: start the real `harp` binary on a config, wait for it, talk
//! to its Runtime API, and always kill it (Drop), even when a test panics.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 for harp to bind later.
///
/// A port from `bind(0)` is released before harp binds it, and the kernel hands ports of that
/// (ephemeral) range to every `connect()` the parallel tests make: one of them took a stats
/// port in CI. So ports come from below the ephemeral range, where the kernel never picks on its
/// own, each handed out once per test process (a counter from a per-process random start), and
/// checked free by a bind.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 20_000;
    let high = ephemeral_low().min(u16::MAX as u32 + 1);
    if high < LOW + 1_000 {
        return kernel_port();
    }
    let span = high - LOW;
    static START: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let start = *START.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        std::process::id().wrapping_mul(7_919).wrapping_add(nanos)
    });
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + start.wrapping_add(n) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    kernel_port()
}

/// The first port of the kernel's ephemeral range (32768 when it cannot be read).
fn ephemeral_low() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// A port the kernel picks (bound then released), when no range is left below the ephemeral one.
fn kernel_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A running harp process; killed on drop.
pub struct Harp {
    child: Child,
    /// Temp dir holding the config and captured output.
    pub dir: tempfile::TempDir,
    stderr_path: PathBuf,
}

impl Harp {
    /// Writes `config` to a temp dir and starts `harp -f` there with `env` added. Does not wait.
    pub fn spawn(config: &str, env: &[(&str, &str)]) -> Harp {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::spawn_in(dir, config, env)
    }

    /// Same as [`Harp::spawn`] in a prepared directory (scripts already written there).
    pub fn spawn_in(dir: tempfile::TempDir, config: &str, env: &[(&str, &str)]) -> Harp {
        Self::spawn_prepared(dir, config, env, |_| {})
    }

    /// Same as [`Harp::spawn_in`], with `prepare` adjusting the command last (a `pre_exec`
    /// hook, say).
    pub fn spawn_prepared(
        dir: tempfile::TempDir,
        config: &str,
        env: &[(&str, &str)],
        prepare: impl FnOnce(&mut Command),
    ) -> Harp {
        // HARP_BIN runs the same test against another build (or a wrapper starting HAProxy)
        let bin = std::env::var_os("HARP_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_harp").into());
        Self::spawn_bin(bin, dir, config, env, prepare)
    }

    /// Same as [`Harp::spawn_prepared`] with another program than harp (HAProxy, as the
    /// other end of a protocol test).
    pub fn spawn_bin(
        bin: std::ffi::OsString,
        dir: tempfile::TempDir,
        config: &str,
        env: &[(&str, &str)],
        prepare: impl FnOnce(&mut Command),
    ) -> Harp {
        let cfg = dir.path().join("harp.cfg");
        std::fs::write(&cfg, config).expect("write config");
        let stderr_path = dir.path().join("stderr.log");
        let err = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut cmd = Command::new(bin);
        cmd.arg("-f").arg(&cfg).current_dir(dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        prepare(&mut cmd);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn harp");
        Harp {
            child,
            dir,
            stderr_path,
        }
    }

    /// Starts harp and waits until `port` on 127.0.0.1 accepts connections.
    pub fn start(config: &str, port: u16, env: &[(&str, &str)]) -> Harp {
        let mut h = Self::spawn(config, env);
        h.wait_port(port);
        h
    }

    /// Waits (10 s max) until 127.0.0.1:`port` accepts, panicking with harp's stderr otherwise.
    pub fn wait_port(&mut self, port: u16) {
        let ok = wait_until(Duration::from_secs(10), || {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("harp exited early ({st}): {}", self.stderr());
            }
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(ok, "harp did not listen on {port}: {}", self.stderr());
    }

    /// Everything harp wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Waits (10 s max) until stderr holds a line containing `needle`.
    pub fn wait_log(&self, needle: &str) -> bool {
        wait_until(Duration::from_secs(10), || self.stderr().contains(needle))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal to harp.
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status();
    }

    /// Waits (10 s max) for exit; returns the exit status code if it exited.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let mut code = None;
        wait_until(Duration::from_secs(10), || match self.child.try_wait() {
            Ok(Some(st)) => {
                code = Some(st.code().unwrap_or(-1));
                true
            }
            _ => false,
        });
        code
    }

    /// Path of a file in the temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Number of open fds of the process.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

impl Drop for Harp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One Runtime API command over TCP, like `echo "cmd" | socat stdio tcp4-connect:...`: sends the
/// line, reads until the server closes, returns the reply.
pub fn cli(port: u16, cmd: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect stats socket");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(format!("{cmd}\n").as_bytes())
        .expect("send command");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The same through the real `socat` binary, as operators do it.
pub fn socat(port: u16, cmd: &str) -> String {
    let mut child = Command::new("socat")
        .arg("stdio")
        .arg(format!("tcp4-connect:127.0.0.1:{port}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("socat (make test installs it)");
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(format!("{cmd}\n").as_bytes());
    }
    let out = child.wait_with_output().expect("socat output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write file");
    p
}

/// A UDP syslog listener and the `option tcplog` + `log` lines that send to it.
pub fn syslog_sink() -> (UdpSocket, String) {
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let lines = format!(
        "    option tcplog\n    log {} local0\n",
        sink.local_addr().unwrap()
    );
    (sink, lines)
}

/// The first log line received that contains `needle` (others, e.g. the readiness probe's
/// session, are skipped).
pub fn syslog_line(sink: &UdpSocket, needle: &str) -> String {
    let mut buf = [0u8; 2048];
    loop {
        let n = sink
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no log line with {needle:?} ({e})"));
        // (each datagram ends with a newline, as HAProxy's do)
        let line = String::from_utf8_lossy(&buf[..n])
            .trim_end_matches('\n')
            .to_string();
        if line.contains(needle) {
            return line;
        }
    }
}

/// A server on 127.0.0.1 that accepts and closes every connection (health checks pass); it
/// lives as long as the test process. Its port.
pub fn accepting_upstream() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = l.local_addr().map(|a| a.port()).expect("local addr");
    std::thread::spawn(move || {
        for c in l.incoming() {
            if c.is_err() {
                break;
            }
        }
    });
    port
}

/// One field of one `show stat` row (the row starting with `row`, e.g. `be,s1,`).
pub fn stat_field(api: u16, row: &str, field: &str) -> String {
    let stat = cli(api, "show stat");
    let header: Vec<&str> = stat.lines().next().unwrap_or("").split(',').collect();
    let col = header.iter().position(|f| *f == field);
    match (col, stat.lines().find(|l| l.starts_with(row))) {
        (Some(c), Some(l)) => l.split(',').nth(c).unwrap_or("").to_string(),
        _ => panic!("no {field} for {row} in {stat}"),
    }
}

/// A connection to the proxy on `port` from the loopback address `src`.
pub fn connect_from(src: &str, port: u16) -> TcpStream {
    let s =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    s.bind(
        &format!("{src}:0")
            .parse::<SocketAddr>()
            .expect("addr")
            .into(),
    )
    .expect("bind a loopback source");
    s.connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .expect("connect");
    let c: TcpStream = s.into();
    c.set_read_timeout(Some(Duration::from_secs(5))).ok();
    c
}

/// A server on 127.0.0.1 that answers each connection with its `name` and a newline once the
/// client sent something (or closed its side); it lives as long as the test process. Its port.
pub fn named_upstream(name: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = l.local_addr().map(|a| a.port()).expect("local addr");
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { break };
            std::thread::spawn(move || {
                let mut b = [0u8; 256];
                let _ = c.read(&mut b);
                let _ = c.write_all(format!("{name}\n").as_bytes());
            });
        }
    });
    port
}

/// An echo server on 127.0.0.1: every connection gets its bytes back until it closes; it
/// lives as long as the test process. Its port.
pub fn echo_upstream() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = l.local_addr().map(|a| a.port()).expect("local addr");
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { break };
            std::thread::spawn(move || {
                let mut b = vec![0u8; 65536];
                while let Ok(n) = c.read(&mut b) {
                    if n == 0 || c.write_all(&b[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// A UDP listener for raw log lines (10 s read timeout) and its address as `ip:port`.
pub fn udp_sink() -> (UdpSocket, String) {
    let s = UdpSocket::bind("127.0.0.1:0").expect("udp");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let addr = s.local_addr().expect("addr").to_string();
    (s, addr)
}
