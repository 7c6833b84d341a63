//! A fault-injecting TCP proxy in front of one service, for outage tests
//! that must not touch the shared services: phs is pointed at the proxy's
//! port, and the test switches it at run time between passing bytes through,
//! being down (every open connection cut, new ones refused) and being slow
//! (a delay added to every chunk, each way).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass,
    /// Cut every connection and refuse new ones, as a stopped service does.
    Down,
    /// Pass, adding this delay before each chunk is forwarded, in both directions.
    Slow(Duration),
}

pub struct FaultProxy {
    pub port: u16,
    mode: watch::Sender<Mode>,
    /// While down: the port, bound but not listening, so connections are refused and no
    /// other process can take the port until the proxy listens on it again.
    closed: Arc<Mutex<Option<TcpSocket>>>,
    /// Where new connections go (`host:port`).
    target: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

fn bind(port: u16) -> TcpSocket {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .unwrap_or_else(|e| panic!("the fault proxy cannot bind its port {port} again: {e}"));
    socket
}

impl FaultProxy {
    /// A proxy on an ephemeral loopback port forwarding to `target` (`host:port`), passing.
    pub async fn start(target: &str) -> FaultProxy {
        let first = bind(0);
        let port = first.local_addr().unwrap().port();
        let (mode, watching) = watch::channel(Mode::Pass);
        let closed = Arc::new(Mutex::new(None));
        let target = Arc::new(Mutex::new(target.to_string()));
        let task = tokio::spawn(serve(first, target.clone(), watching, closed.clone()));
        FaultProxy { port, mode, closed, target, task }
    }

    /// Sends new connections to `target` instead: for a service that must know the
    /// proxy's port before it starts (a broker advertising it).
    pub fn retarget(&self, target: &str) {
        *self.target.lock().unwrap() = target.to_string();
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// Waits until a `Down` proxy's port refuses connections (the listener is gone).
    pub async fn wait_refusing(&self) {
        super::eventually::eventually(Duration::from_secs(5), "the proxy to refuse connections", async || {
            match TcpStream::connect(("127.0.0.1", self.port)).await {
                Err(_) if self.closed.lock().unwrap().is_some() => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens while not down; while down, holds the port closed and waits for the mode to change.
async fn serve(
    first: TcpSocket,
    target: Arc<Mutex<String>>,
    mut mode: watch::Receiver<Mode>,
    closed: Arc<Mutex<Option<TcpSocket>>>,
) {
    let port = first.local_addr().unwrap().port();
    let mut socket = Some(first);
    loop {
        let listener = socket.take().unwrap_or_else(|| bind(port)).listen(128).unwrap();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((inbound, _)) = accepted else { continue };
                    let target = target.lock().unwrap().clone();
                    tokio::spawn(forward(inbound, target, mode.clone()));
                }
                changed = mode.changed() => {
                    if changed.is_err() { return }
                    if *mode.borrow() == Mode::Down { break }
                }
            }
        }
        // Dropping the listener refuses new connections; binding again at once keeps the port ours.
        drop(listener);
        *closed.lock().unwrap() = Some(bind(port));
        while *mode.borrow_and_update() == Mode::Down {
            if mode.changed().await.is_err() {
                return;
            }
        }
        socket = closed.lock().unwrap().take();
    }
}

/// One proxied connection, until either side closes it or the proxy goes down.
async fn forward(inbound: TcpStream, target: String, mut mode: watch::Receiver<Mode>) {
    if *mode.borrow_and_update() == Mode::Down {
        return;
    }
    let Ok(outbound) = TcpStream::connect(&target).await else { return };
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    let up = pump(in_read, out_write, mode.clone());
    let down = pump(out_read, in_write, mode.clone());
    let cut = async {
        while *mode.borrow_and_update() != Mode::Down {
            if mode.changed().await.is_err() {
                return;
            }
        }
    };
    // Either direction ending, or the proxy going down, drops both sockets: the connection is cut.
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = cut => {}
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mode: watch::Receiver<Mode>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let delay = match *mode.borrow() {
            Mode::Slow(d) => Some(d),
            _ => None,
        };
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
