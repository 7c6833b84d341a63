//! A Kafka-protocol broker of the test's own (`nisshi`, in memory, as
//! `scripts/services` runs the shared one) that advertises another address
//! than the one it listens on: a client that bootstraps through a fault
//! proxy is then sent back to the proxy by the metadata, where the shared
//! broker would hand back its own port and let the client bypass the proxy.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::eventually::eventually_blocking;

pub struct OwnBroker {
    child: Child,
    /// Where it listens; clients should use the advertised address instead.
    pub port: u16,
    log: tempfile::NamedTempFile,
}

/// The `nisshi` that `scripts/services` installs (`cargo install nisshi`).
fn nisshi() -> PathBuf {
    let cargo_home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME is set")).join(".cargo"));
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("nisshi")).collect::<Vec<_>>())
        .unwrap_or_default();
    candidates.into_iter().chain([cargo_home.join("bin/nisshi")]).find(|p| p.is_file()).expect(
        "no `nisshi` on PATH or in $CARGO_HOME/bin: this test runs its own Kafka broker, which \
         scripts/services installs with the shared one",
    )
}

impl OwnBroker {
    /// Starts a broker on a free loopback port that advertises `127.0.0.1:advertised_port`.
    pub fn start(advertised_port: u16) -> OwnBroker {
        let port = super::free_port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(nisshi())
            .args(["broker", "--listener-url", &format!("tcp://127.0.0.1:{port}")])
            .args(["--advertised-listener-url", &format!("tcp://127.0.0.1:{advertised_port}")])
            .args(["--storage-engine", "memory://nisshi/", "--group-initial-rebalance-delay", "0s"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log.reopen().unwrap()))
            .spawn()
            .unwrap();
        let mut broker = OwnBroker { child, port, log };
        eventually_blocking(Duration::from_secs(30), "the test's own nisshi broker to listen", || {
            if let Some(status) = broker.child.try_wait().unwrap() {
                panic!("nisshi exited with {status}: {}", std::fs::read_to_string(broker.log.path()).unwrap());
            }
            std::net::TcpStream::connect(("127.0.0.1", port)).map(|_| ()).map_err(|e| e.to_string())
        });
        broker
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
