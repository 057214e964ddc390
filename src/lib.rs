//! muster: a terminal workbench for running a crew of AI coding agents side by side on one git repository.

pub mod app;
pub mod bench;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod conflict;
pub mod demo;
pub mod engine;
pub mod gate;
pub mod git;
pub mod guard;
pub mod ipc;
pub mod key;
pub mod logfile;
pub mod mailbox;
pub mod protocol;
pub mod pty;
pub mod roster_watch;
pub mod safefs;
pub mod server;
pub mod term;
pub mod text;
pub mod tui;
pub mod ui;
