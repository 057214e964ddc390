//! A client's end of the server: the handshake, requests out, events and screens in. It speaks only
//! `protocol`, over any byte stream (the server's socket, or `ssh HOST muster proxy`).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};

use crate::protocol::{self, damage, frame, Event, Hello, ToClient, ToServer, Welcome};
use crate::term::Screen;

/// What comes from the server (moved once through a channel: boxing the event would only add an allocation).
#[allow(clippy::large_enum_variant)]
pub enum Incoming {
    Event(Event),
    /// The connection ended, and why.
    Closed(String),
}

/// Say hello and wait for the welcome; then `on` gets everything the server sends, on a thread of its own, and
/// the returned handle sends commands.
pub fn attach(
    mut read: Box<dyn Read + Send>,
    write: Box<dyn Write + Send>,
    hello: Hello,
    on: impl Fn(Incoming) + Send + 'static,
) -> Result<(protocol::Commands, Welcome)> {
    let write = Arc::new(Mutex::new(write));
    send(&write, &ToServer::Hello(hello.clone())).context("greeting the muster server")?;
    let mut frames = frame::Reader::default();
    let welcome = match next_json(read.as_mut(), &mut frames, "welcome")? {
        ToClient::Welcome(w) => w,
        ToClient::Bye { reason } => bail!("the muster server refused: {reason}"),
        _ => bail!("the muster server did not welcome this client"),
    };
    if let Err(e) = protocol::check_version(&hello, &welcome) {
        bail!("{e}");
    }
    // The crew as it is comes right after: handed over before this returns, so a workbench knows its agents
    // (and the size to start them at) before it asks for anything.
    match next_json(read.as_mut(), &mut frames, "snapshot")? {
        ToClient::Snapshot { events } => events.into_iter().for_each(|e| on(Incoming::Event(e))),
        ToClient::Bye { reason } => bail!("the muster server refused: {reason}"),
        _ => bail!("the muster server sent no snapshot after its welcome"),
    }
    std::thread::Builder::new().name("from-server".into()).spawn(move || {
        let reason = receive(read.as_mut(), frames, &on);
        on(Incoming::Closed(reason));
    })?;
    let next = AtomicU64::new(1);
    let handle = protocol::Commands::new(move |command| {
        let id = next.fetch_add(1, Ordering::Relaxed);
        // A failed write shows as the end of the connection on the reading side.
        let _ = send(&write, &ToServer::Request { id, command });
    });
    Ok((handle, welcome))
}

/// The next frame, which must be JSON, read during the handshake.
fn next_json(read: &mut dyn Read, frames: &mut frame::Reader, what: &str) -> Result<ToClient> {
    let mut buf = [0u8; 16 << 10];
    loop {
        match frames.next_frame()? {
            Some((frame::Kind::Json, payload)) => {
                return serde_json::from_slice(&payload).with_context(|| format!("reading the muster server's {what}"))
            }
            Some(_) => bail!("the muster server sent a screen before its {what}"),
            None => {}
        }
        let n = read.read(&mut buf).with_context(|| format!("reading the muster server's {what}"))?;
        if n == 0 {
            bail!("the muster server closed the connection before its {what}");
        }
        frames.push(&buf[..n]);
    }
}

fn send(write: &Mutex<Box<dyn Write + Send>>, msg: &ToServer) -> std::io::Result<()> {
    let mut w = write.lock().unwrap_or_else(|p| p.into_inner());
    w.write_all(&protocol::json_frame(msg))?;
    w.flush()
}

/// Read until the connection ends; the reason it ended.
fn receive(read: &mut dyn Read, mut frames: frame::Reader, on: &impl Fn(Incoming)) -> String {
    let mut screens: HashMap<String, (Screen, Option<u64>)> = HashMap::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        loop {
            match frames.next_frame() {
                Ok(Some((frame::Kind::Json, payload))) => match serde_json::from_slice::<ToClient>(&payload) {
                    Ok(ToClient::Snapshot { events }) => events.into_iter().for_each(|e| on(Incoming::Event(e))),
                    Ok(ToClient::Event(e)) | Ok(ToClient::Reply { event: e, .. }) => on(Incoming::Event(e)),
                    Ok(ToClient::Bye { reason }) => return reason,
                    Ok(ToClient::Welcome(_)) => {}
                    Err(e) => return format!("a malformed message from the server: {e}"),
                },
                Ok(Some((frame::Kind::Damage, payload))) => match apply(&mut screens, &payload) {
                    Ok((name, screen, change)) => on(Incoming::Event(Event::Screen { name, screen, change })),
                    Err(e) => return format!("a bad screen from the server: {e}"),
                },
                Ok(None) => break,
                Err(e) => return format!("a bad frame from the server: {e}"),
            }
        }
        match read.read(&mut buf) {
            Ok(0) => return "the muster server ended".into(),
            Err(e) => return format!("the connection to the muster server broke: {e}"),
            Ok(n) => frames.push(&buf[..n]),
        }
    }
}

/// Apply a screen frame to the copy of that agent's screen.
/// Apply a screen frame to the copy of that agent's screen: the screen, and how it differs from the one before.
fn apply(
    screens: &mut HashMap<String, (Screen, Option<u64>)>,
    payload: &[u8],
) -> Result<(String, Screen, Option<crate::term::Change>), damage::DamageError> {
    let (name, d) = protocol::parse_screen_frame(payload)?;
    let (screen, have) = screens.entry(name.clone()).or_default();
    damage::apply(screen, *have, &d)?;
    *have = Some(d.seq);
    let change = d
        .base
        .is_some()
        .then(|| crate::term::Change { scroll: d.scroll, rows: d.changed.iter().map(|(r, _)| *r).collect() });
    Ok((name, screen.clone(), change))
}
