//! The muster server: one per repository, detached, owning the engine. Clients (the workbench, `muster attach
//! --via`, `muster proxy`) speak the framed protocol on `server.sock` in the repository's run folder; scripts and
//! agent hooks speak newline-delimited JSON on the engine's own socket beside it. tokio serves the sockets;
//! PTYs, emulators and git stay on the engine's blocking threads.

pub mod hub;
pub mod spawn;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::engine::supervisor::EngineMsg;
use crate::engine::Request;
use crate::protocol::{self, damage, frame, json_frame, Command, ToClient, ToServer, Welcome};
use hub::Hub;

/// The clients' socket, in the run folder.
pub const SOCKET: &str = "server.sock";
/// What the server is, for `muster server status` and `muster ls`.
pub const INFO: &str = "server.json";
/// Its standard output and error (panics, errors before logging starts).
pub const LOG: &str = "server.log";

/// How long a client may take to say hello.
const HELLO_WITHIN: Duration = Duration::from_secs(10);
/// Requests of one client the engine has not taken yet: while this many wait, its socket is not read (it is
/// slowed down, and its requests wait in its own socket buffer, not in the server's memory).
const IN_FLIGHT: usize = 32;
/// A client whose requests could not go in for this long is dropped.
const SLOWED_FOR: Duration = Duration::from_secs(30);
/// Bytes held for half-sent frames, all clients together: past it, the client that adds more is dropped.
pub const MAX_HALF_SENT: usize = 64 << 20;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ServerInfo {
    pub pid: u32,
    pub root: PathBuf,
    pub muster: String,
    pub protocol: u32,
    /// Milliseconds since the Unix epoch.
    pub started_ms: u64,
    pub clients: usize,
}

pub fn socket_path(root: &Path) -> Result<PathBuf> {
    Ok(crate::ipc::run_dir(root)?.join(SOCKET))
}

/// What `muster server status` and `muster ls` read: the server's own account, when it runs.
pub fn info(run_dir: &Path) -> Option<ServerInfo> {
    crate::ipc::holder(run_dir)?;
    let bytes = crate::safefs::read_own_file(&run_dir.join(INFO), 1 << 20).ok()??;
    serde_json::from_slice(&bytes).ok()
}

fn write_info(run_dir: &Path, info: &ServerInfo) {
    if let Ok(json) = serde_json::to_vec_pretty(info) {
        if let Err(e) = crate::safefs::write_file(run_dir, INFO, &json) {
            tracing::warn!("writing {INFO}: {e:#}");
        }
    }
}

/// Run the server for the engine `cfg` describes, until the crew is stopped (or nothing is left to serve).
pub fn run(cfg: crate::engine::EngineConfig) -> Result<()> {
    let root = cfg.root.clone();
    let hub = Arc::new(Hub::default());
    let publish = hub.clone();
    let sink = crate::engine::EventSink::new(move |out| publish.publish(out));
    // Takes the repository's lock: a second server stops here with who holds it.
    let engine = crate::engine::supervisor::start(cfg, Arc::new(crate::pty::NativePty), sink)?;
    let tx = engine.engine_channel().context("the engine runs in this process")?.clone();
    let run_dir = crate::ipc::run_dir(&root)?;
    let path = run_dir.join(SOCKET);
    // We hold the lock: a socket left there is a dead server's.
    let _ = std::fs::remove_file(&path);
    let listener =
        std::os::unix::net::UnixListener::bind(&path).with_context(|| format!("listening on {}", path.display()))?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    let mut info = ServerInfo {
        pid: std::process::id(),
        root: root.clone(),
        muster: env!("CARGO_PKG_VERSION").into(),
        protocol: protocol::VERSION,
        started_ms: crate::engine::agent::now_ms(),
        clients: 0,
    };
    write_info(&run_dir, &info);
    // SIGTERM and SIGINT stop the crew as `muster server stop` does; a hangup means nothing to a detached server.
    let stop = engine.clone();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        for sig in signals.forever() {
            if sig != signal_hook::consts::SIGHUP {
                tracing::info!("signal {sig}: stopping the crew");
                stop.stop_first();
            }
        }
    })?;
    tracing::info!("server {} for {}", std::process::id(), root.display());
    let repo_name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting tokio")?;
    rt.block_on(async {
        let listener = tokio::net::UnixListener::from_std(listener)?;
        let mut clients_shown = 0;
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let stream = match accepted {
                        Ok((stream, _)) => stream,
                        Err(e) => {
                            // Out of descriptors (or memory): the socket stays readable, so accepting again at
                            // once would spin; the clients waiting are served once some leave.
                            crate::warn_limited!("accept", "accepting a client: {e}");
                            tokio::time::sleep(crate::ipc::ACCEPT_BACKOFF).await;
                            continue;
                        }
                    };
                    if !crate::ipc::same_user(&stream) {
                        crate::warn_limited!("other user", "refused a client of another user");
                        continue;
                    }
                    tokio::spawn(serve(stream, hub.clone(), tx.clone(), repo_name.clone()));
                }
                _ = hub.done.notified() => break,
                _ = hub.roster.notified() => {}
            }
            if hub.clients() != clients_shown {
                clients_shown = hub.clients();
                info.clients = clients_shown;
                write_info(&run_dir, &info);
            }
        }
        // The clients hear that the crew stopped before the server goes; one that takes nothing for a while (a
        // flooding client does not read) is not waited for.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        let (mut left, mut moved) = (hub.pending(), tokio::time::Instant::now());
        while left > 0 && tokio::time::Instant::now() < deadline && moved.elapsed() < Duration::from_millis(200) {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let now = hub.pending();
            if now < left {
                moved = tokio::time::Instant::now();
            }
            left = now;
        }
        anyhow::Ok(())
    })?;
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(run_dir.join(INFO));
    crate::git::watch::remove_own_barriers();
    Ok(())
}

/// One client: its hello, then its requests; its output goes out on a task of its own that nobody waits for.
async fn serve(stream: UnixStream, hub: Arc<Hub>, engine: std::sync::mpsc::Sender<EngineMsg>, repo: String) {
    let (read, write) = stream.into_split();
    let mut inbound = Inbound { read, frames: frame::Reader::default(), buf: vec![0u8; 64 << 10], held: 0, hub: &hub };
    let hello = match tokio::time::timeout(HELLO_WITHIN, inbound.next()).await {
        Ok(Ok(Some(ToServer::Hello(h)))) => h,
        _ => return,
    };
    let welcome =
        Welcome { version: protocol::VERSION, muster: env!("CARGO_PKG_VERSION").into(), pid: std::process::id(), repo };
    let (id, notify, kick) = hub.join(hello.kind, json_frame(&ToClient::Welcome(welcome.clone())));
    let mut writer = tokio::spawn(write_out(write, hub.clone(), id, notify));
    let refused = protocol::check_version(&hello, &welcome)
        .and_then(|()| hello.size.map_or(Ok(()), |(rows, cols)| protocol::check_size(rows, cols)));
    if let Err(e) = refused {
        hub.close(id, Some(e));
        if tokio::time::timeout(Duration::from_secs(2), &mut writer).await.is_err() {
            writer.abort();
        }
        hub.leave(id);
        return;
    }
    crate::info_limited!("client joins", "client {id} ({:?}, muster {}) attached", hello.kind, hello.muster);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let reason = loop {
        // The hub may let the client go (it does not read its answers) while it sends nothing.
        let next = tokio::select! {
            next = inbound.next() => next,
            _ = kick.notified() => break hub.gone(id),
        };
        match next {
            Ok(Some(ToServer::Request { id: request, command })) => {
                if let Err(e) = protocol::check_request(&command) {
                    break Some(e);
                }
                if let Command::Watch { name, also, .. } = &command {
                    hub.watching(id, name.iter().cloned().chain(also.iter().map(|p| p.name.clone())).collect());
                    if hello.kind.reads_only() {
                        continue;
                    }
                }
                let Ok(Ok(permit)) = tokio::time::timeout(SLOWED_FOR, in_flight.clone().acquire_owned()).await else {
                    break Some(format!(
                        "it sent requests faster than the server takes them ({IN_FLIGHT} waited for {} s)",
                        SLOWED_FOR.as_secs()
                    ));
                };
                let from = crate::engine::Asker { client: id, id: request };
                if engine.send(EngineMsg::Request(Request { from, command, permit: Some(permit) })).is_err() {
                    break None;
                }
            }
            Ok(Some(ToServer::Hello(_))) => break Some("a second hello".to_string()),
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    drop(inbound);
    crate::info_limited!(
        "client leaves",
        "client {id} left{}",
        reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
    );
    hub.close(id, reason);
    let _ = engine.send(EngineMsg::ClientGone { client: id });
    // Its writer says why and ends; one that cannot write (a client that stopped reading) is not waited for.
    if tokio::time::timeout(Duration::from_secs(2), &mut writer).await.is_err() {
        writer.abort();
    }
    if hub.leave(id) && !hub.shut_down() {
        tracing::info!("no client and no running agent: the server ends");
        let _ = engine.send(EngineMsg::Request(Request::of_nobody(Command::Shutdown)));
    }
}

/// A client's incoming bytes, and what its half-sent frame holds of the server's memory (counted for all
/// clients together in the hub, given back when the frame completes or the client goes).
struct Inbound<'a> {
    read: tokio::net::unix::OwnedReadHalf,
    frames: frame::Reader,
    buf: Vec<u8>,
    held: usize,
    hub: &'a Hub,
}

impl Inbound<'_> {
    /// The next message; `None` at the end of its stream; an error drops that client (never the server).
    async fn next(&mut self) -> Result<Option<ToServer>, String> {
        loop {
            let next = self.frames.next_frame().map_err(|e| e.to_string());
            self.account()?;
            match next? {
                Some((frame::Kind::Json, payload)) => {
                    return serde_json::from_slice(&payload).map(Some).map_err(|e| format!("a malformed request: {e}"))
                }
                Some((frame::Kind::Damage, _)) => return Err("clients do not send screens".into()),
                None => {}
            }
            match self.read.read(&mut self.buf).await {
                Ok(0) | Err(_) => return Ok(None),
                Ok(n) => self.frames.push(&self.buf[..n]),
            }
        }
    }

    fn account(&mut self) -> Result<(), String> {
        let now = self.frames.held();
        let counter = &self.hub.half_sent;
        if now > self.held {
            let total = counter.fetch_add(now - self.held, Ordering::SeqCst) + (now - self.held);
            self.held = now;
            if total > MAX_HALF_SENT {
                return Err(format!(
                    "the server holds {MAX_HALF_SENT} bytes of half-sent requests already (send whole frames)"
                ));
            }
        } else {
            counter.fetch_sub(self.held - now, Ordering::SeqCst);
            self.held = now;
        }
        Ok(())
    }
}

impl Drop for Inbound<'_> {
    fn drop(&mut self) {
        self.hub.half_sent.fetch_sub(self.held, Ordering::SeqCst);
    }
}

/// Send a client what waits in its outbox, as fast as it takes it; screens as damage on what it was sent.
async fn write_out(
    mut write: tokio::net::unix::OwnedWriteHalf,
    hub: Arc<Hub>,
    id: u64,
    notify: Arc<tokio::sync::Notify>,
) {
    let mut sent: std::collections::HashMap<String, (Arc<crate::term::Screen>, u64)> = Default::default();
    let mut seq = 0u64;
    loop {
        notify.notified().await;
        let Some(batch) = hub.take(id) else { break };
        if batch.fresh_screens {
            sent.clear();
        }
        let mut bytes = Vec::new();
        for f in batch.frames {
            bytes.extend(f);
        }
        for (name, update) in batch.screens {
            seq += 1;
            let before = sent.get(&name);
            let d = match (&update.after, before) {
                // It has the screen this one follows: the rows the emulator says changed, nothing compared.
                (Some((after, change)), Some((had, n))) if Arc::ptr_eq(after, had) => {
                    damage::from_change(*n, &update.screen, change, seq)
                }
                _ => damage::diff(before.map(|(s, n)| (s.as_ref(), *n)), &update.screen, seq),
            };
            bytes.extend(protocol::screen_frame(&name, &d));
            sent.insert(name, (update.screen, seq));
        }
        if write.write_all(&bytes).await.is_err() || batch.closing {
            break;
        }
    }
    let _ = write.shutdown().await;
}
