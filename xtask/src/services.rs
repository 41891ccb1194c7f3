//! Services the tests need, started on loopback for the length of the test run and stopped
//! when the guard is dropped.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running local S3-compatible server (moto), killed on drop.
pub(crate) struct S3Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub(crate) endpoint: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> Result<u16, String> {
    TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// Starts `moto_server` from the venv on a free loopback port and waits until it accepts
/// connections.
pub(crate) fn start_s3(root: &Path) -> Result<S3Server, String> {
    let port = free_port()?;
    let bin = root.join(".venv/bin/moto_server");
    let child = Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let server = S3Server {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "{} did not start listening on port {port} within 30 s",
                bin.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("xtask: S3 server (moto) on {}", server.endpoint);
    Ok(server)
}
