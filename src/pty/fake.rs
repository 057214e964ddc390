//! A fake PTY for engine tests: scripted output, recorded input, an exit the test decides.

use std::io::{Read, Write};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use anyhow::Result;

use super::{ChildWaiter, ExitInfo, PtyBackend, PtyControl, PtyProcess, SpawnSpec};

/// Handles a test keeps to drive one fake child.
#[derive(Clone)]
pub struct FakeChild {
    pub output: Sender<Vec<u8>>,
    pub input: Arc<Mutex<Vec<u8>>>,
    pub exit: Sender<ExitInfo>,
    pub size: Arc<Mutex<(u16, u16)>>,
    pub spec: SpawnSpec,
}

#[derive(Default)]
pub struct FakePty {
    spawned: Mutex<Vec<FakeChild>>,
}

impl FakePty {
    pub fn children(&self) -> Vec<FakeChild> {
        self.spawned.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    pending: Vec<u8>,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pending.is_empty() {
            match self.rx.recv() {
                Ok(bytes) => self.pending = bytes,
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

struct RecordingWriter(Arc<Mutex<Vec<u8>>>);

impl Write for RecordingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct FakeControl(Arc<Mutex<(u16, u16)>>);

impl PtyControl for FakeControl {
    fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        if let Ok(mut s) = self.0.lock() {
            *s = (rows, cols);
        }
        Ok(())
    }
    fn pid(&self) -> Option<u32> {
        None
    }
    fn foreground_group(&self) -> Option<i32> {
        None
    }
}

struct FakeWaiter(Receiver<ExitInfo>);

impl ChildWaiter for FakeWaiter {
    fn wait(&mut self) -> Result<ExitInfo> {
        Ok(self.0.recv().unwrap_or(ExitInfo { code: None, signal: Some(9) }))
    }

    fn try_wait(&mut self) -> Result<Option<ExitInfo>> {
        Ok(match self.0.try_recv() {
            Ok(exit) => Some(exit),
            Err(std::sync::mpsc::TryRecvError::Empty) => None,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => Some(ExitInfo { code: None, signal: Some(9) }),
        })
    }

    fn pid(&self) -> Option<u32> {
        None
    }
}

impl PtyBackend for FakePty {
    fn spawn(&self, spec: &SpawnSpec) -> Result<PtyProcess> {
        let (out_tx, out_rx) = channel();
        let (exit_tx, exit_rx) = channel();
        let input = Arc::new(Mutex::new(Vec::new()));
        let size = Arc::new(Mutex::new((spec.rows, spec.cols)));
        if let Ok(mut v) = self.spawned.lock() {
            v.push(FakeChild {
                output: out_tx,
                input: input.clone(),
                exit: exit_tx,
                size: size.clone(),
                spec: spec.clone(),
            });
        }
        Ok(PtyProcess {
            reader: Box::new(ChannelReader { rx: out_rx, pending: Vec::new() }),
            poll_fd: None,
            writer: Box::new(RecordingWriter(input)),
            control: Box::new(FakeControl(size)),
            waiter: Box::new(FakeWaiter(exit_rx)),
        })
    }
}
