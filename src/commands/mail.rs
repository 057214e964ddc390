//! `muster mail …`: through the crew's server when one runs (inside an agent, always), else on the database.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{printable, printable_line};
use crate::cli::MailCmd;
use crate::engine::agent::now_ms;
use crate::engine::script_socket::{self, Request};
use crate::mailbox::{ops, Store};
use crate::protocol::mail::{Mail, MailAnswer, MailOp, ReceiptState, OPERATOR};

/// Where the request goes, and as whom.
struct Ctx {
    /// The repository (for the database without a server).
    root: Option<PathBuf>,
    run_dir: PathBuf,
    /// Inside an agent: its name and secret.
    agent: Option<(String, String)>,
}

impl Ctx {
    fn new(dir: &Path) -> Result<Ctx> {
        let agent = std::env::var("MUSTER_AGENT").ok().filter(|a| !a.is_empty());
        if let (Some(agent), Ok(run_dir)) = (agent, std::env::var("MUSTER_RUN_DIR")) {
            let token = std::env::var("MUSTER_AGENT_TOKEN").unwrap_or_default();
            return Ok(Ctx { root: None, run_dir: PathBuf::from(run_dir), agent: Some((agent, token)) });
        }
        let root = crate::git::worktree::find_repo_root(dir)?;
        Ok(Ctx { run_dir: crate::ipc::run_dir(&root)?, root: Some(root), agent: None })
    }

    fn me(&self) -> &str {
        self.agent.as_ref().map_or(OPERATOR, |(a, _)| a.as_str())
    }

    /// One request, answered by the server, or (the operator, no server) by the database itself.
    fn ask(&self, op: MailOp) -> Result<MailAnswer> {
        // Said here, before a request the server would refuse for its size.
        if let MailOp::Send { body, .. } = &op {
            if let Err(e) = crate::protocol::mail::check_body(body) {
                return Ok(MailAnswer::Error { error: e });
            }
        }
        // The socket first: a server that listens is the one to ask (and the one to wait for).
        let (agent, token) = self.agent.clone().unzip();
        let req = Request::Mail { agent, token, op: op.clone() };
        let within = (!matches!(op, MailOp::Wait { .. })).then_some(Duration::from_secs(30));
        match script_socket::ask(&self.run_dir, &req, within)? {
            Some(crate::protocol::script::Answer::Mail(answer)) => return Ok(answer),
            Some(crate::protocol::script::Answer::Error(e)) => return Ok(MailAnswer::Error { error: e.message }),
            Some(other) => bail!("the running muster answered {other:?}"),
            None => {}
        }
        if crate::ipc::holder(&self.run_dir).is_some() {
            bail!("the muster server did not answer");
        }
        let Some(root) = &self.root else {
            bail!("muster is not running: an agent's mail goes through the server that started it");
        };
        self.offline(root, op)
    }

    fn offline(&self, root: &Path, op: MailOp) -> Result<MailAnswer> {
        let mut store = Store::open_in(root)?;
        let crew = crew_names(root);
        if let MailOp::Wait { id, until, timeout } = op {
            // Nothing delivers without a server, but another process may ack or drop meanwhile.
            let deadline = timeout.and_then(crate::mailbox::seconds).map(|d| Instant::now() + d);
            loop {
                let mail = store.get(id)?.with_context(|| format!("no message #{id}"))?;
                if let Some(matched) = ops::wait_settled(&mail, until) {
                    return Ok(MailAnswer::Waited { matched, timed_out: false, mail });
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(MailAnswer::Waited { matched: false, timed_out: true, mail });
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(ops::run(&mut store, OPERATOR, op, &crew, now_ms()).0)
    }
}

/// The crew's names without a server: the saved state's and the crew file's.
fn crew_names(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = crate::engine::store::load(root)
        .map(|(c, _)| c.agents.into_iter().map(|a| a.spec.name).collect())
        .unwrap_or_default();
    if let Ok((crew, _, _)) = super::load_crew(root) {
        for a in crew.agents {
            if !names.contains(&a.name) {
                names.push(a.name);
            }
        }
    }
    names
}

fn text_or_stdin(text: Option<String>) -> Result<String> {
    match text {
        Some(t) => Ok(t),
        None => {
            let mut t = String::new();
            std::io::Read::read_to_string(&mut std::io::Read::take(std::io::stdin(), 1 << 20), &mut t)
                .context("reading the message from stdin")?;
            Ok(t.trim_end_matches('\n').to_string())
        }
    }
}

pub fn run(dir: &Path, cmd: MailCmd) -> Result<ExitCode> {
    let ctx = Ctx::new(dir)?;
    let mut history = false;
    let (answer, json) = match cmd {
        MailCmd::Send { to, text, reply_to, urgent, expires, json } => {
            let body = text_or_stdin(text)?;
            (ctx.ask(MailOp::Send { to, body, reply_to, urgent, ask: false, expires })?, json)
        }
        MailCmd::Ask { text, wait, timeout } => return ask(&ctx, text_or_stdin(text)?, wait, timeout),
        MailCmd::Inbox { unread, json, limit } => (ctx.ask(MailOp::Inbox { unread, limit: Some(limit) })?, json),
        MailCmd::Read { id, json } => (ctx.ask(MailOp::Read { id })?, json),
        MailCmd::Ack { id } => (ctx.ask(MailOp::Ack { id })?, false),
        MailCmd::Status { id, json } => {
            history = true;
            (ctx.ask(MailOp::Status { id })?, json)
        }
        MailCmd::Wait { id, until, timeout } => {
            let until = ReceiptState::parse(&until).unwrap_or(ReceiptState::Acked);
            return Ok(match ctx.ask(MailOp::Wait { id, until, timeout })? {
                MailAnswer::Waited { matched: true, .. } => ExitCode::SUCCESS,
                MailAnswer::Waited { timed_out: true, .. } => ExitCode::from(124),
                MailAnswer::Waited { mail, .. } => {
                    for r in mail.receipts.iter().filter(|r| r.state.failed()) {
                        eprintln!("muster: #{id} to {}: {}{}", r.recipient, r.state.label(), detail(&r.detail));
                    }
                    ExitCode::from(3)
                }
                MailAnswer::Error { error } => {
                    eprintln!("muster: {}", printable_line(&error));
                    ExitCode::from(3)
                }
                other => bail!("unexpected answer: {other:?}"),
            });
        }
        MailCmd::Retry { id, recipient } => return each_dead(&ctx, id, recipient, true),
        MailCmd::Drop { id, recipient } => return each_dead(&ctx, id, recipient, false),
    };
    print_answer(&ctx, answer, json, history)
}

fn print_answer(ctx: &Ctx, answer: MailAnswer, json: bool, with_history: bool) -> Result<ExitCode> {
    if let MailAnswer::Error { error } = &answer {
        eprintln!("muster: {}", printable_line(error));
        return Ok(ExitCode::from(1));
    }
    if json {
        let v = match &answer {
            MailAnswer::Sent { mail } => serde_json::to_value(mail)?,
            MailAnswer::Mails { mails } => serde_json::to_value(mails)?,
            other => serde_json::to_value(other)?,
        };
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let now = now_ms();
    match answer {
        MailAnswer::Sent { mail } => println!("#{}", mail.id),
        MailAnswer::Mails { mails } if mails.is_empty() => println!("no mail"),
        MailAnswer::Mails { mails } => {
            for m in &mails {
                println!("{}", printable_line(&list_line(m, ctx.me(), now)));
            }
        }
        MailAnswer::Mail { mail, history } => {
            print!("{}", printable(&full(&mail, now)));
            if with_history {
                println!("history:");
                for (r, s, d, at) in history {
                    println!("  {}", printable_line(&format!("{r}: {}{} {}", s.label(), detail(&d), ago(now, at))));
                }
            }
        }
        MailAnswer::Taken { text } => println!("{}", printable(&text.unwrap_or_default())),
        MailAnswer::Waited { .. } | MailAnswer::Error { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// `muster mail ask`: a question to the operator; with `wait`, the answer printed when it comes.
fn ask(ctx: &Ctx, text: String, wait: bool, timeout: Option<f64>) -> Result<ExitCode> {
    let op =
        MailOp::Send { to: vec![OPERATOR.into()], body: text, reply_to: None, urgent: false, ask: true, expires: None };
    let id = match ctx.ask(op)? {
        MailAnswer::Sent { mail } => mail.id,
        MailAnswer::Error { error } => {
            eprintln!("muster: {}", printable_line(&error));
            return Ok(ExitCode::from(1));
        }
        other => bail!("unexpected answer: {other:?}"),
    };
    if !wait {
        println!("#{id} (the operator's answer comes back as mail, with --reply-to {id})");
        return Ok(ExitCode::SUCCESS);
    }
    match ctx.ask(MailOp::Wait { id, until: ReceiptState::Acked, timeout })? {
        MailAnswer::Waited { matched: true, .. } => {}
        MailAnswer::Waited { timed_out: true, .. } => return Ok(ExitCode::from(124)),
        _ => {
            eprintln!("muster: #{id} was not answered");
            return Ok(ExitCode::from(3));
        }
    }
    let MailAnswer::Mails { mails } = ctx.ask(MailOp::Inbox { unread: false, limit: Some(200) })? else {
        bail!("could not read the answer");
    };
    match mails.into_iter().filter(|m| m.reply_to == Some(id)).min_by_key(|m| m.id) {
        Some(answer) => {
            // Printed here, so it is not typed into the agent as well.
            ctx.ask(MailOp::Read { id: answer.id })?;
            println!("{}", printable(&answer.body));
        }
        None => println!("(acknowledged without an answer)"),
    }
    Ok(ExitCode::SUCCESS)
}

fn each_dead(ctx: &Ctx, id: i64, recipient: Option<String>, retry: bool) -> Result<ExitCode> {
    let recipients = match recipient {
        Some(r) => vec![r],
        None => match ctx.ask(MailOp::Status { id })? {
            MailAnswer::Mail { mail, .. } => mail
                .receipts
                .iter()
                .filter(|r| r.state.failed() || !retry && r.state.pending())
                .map(|r| r.recipient.clone())
                .collect(),
            MailAnswer::Error { error } => bail!(error),
            _ => vec![],
        },
    };
    if recipients.is_empty() {
        eprintln!("muster: #{id} has no dead copy");
        return Ok(ExitCode::from(1));
    }
    for recipient in recipients {
        let op = if retry {
            MailOp::Retry { id, recipient: recipient.clone() }
        } else {
            MailOp::Drop { id, recipient: recipient.clone() }
        };
        match ctx.ask(op)? {
            MailAnswer::Error { error } => {
                eprintln!("muster: {}", printable_line(&error));
                return Ok(ExitCode::from(1));
            }
            _ => println!("#{id} to {recipient}: {}", if retry { "queued again" } else { "dropped" }),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn detail(d: &Option<String>) -> String {
    d.as_ref().map(|d| format!(" ({d})")).unwrap_or_default()
}

/// How long ago, short: `12s`, `3m`, `2h`, `4d`.
pub fn ago(now_ms: u64, at_ms: u64) -> String {
    let s = now_ms.saturating_sub(at_ms) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// One line of an inbox: id, who to whom, when, where your copy is, the first line.
fn list_line(m: &Mail, me: &str, now: u64) -> String {
    let state = m.receipt(me).map(|r| r.state.label()).unwrap_or("sent");
    let kind = if m.ask {
        " ask"
    } else if m.urgent {
        " urgent"
    } else {
        ""
    };
    format!(
        "#{:<5} {} → {}  {:>4}  [{state}{kind}]  {}",
        m.id,
        m.from,
        m.to.join(","),
        ago(now, m.created_ms),
        m.summary()
    )
}

fn full(m: &Mail, now: u64) -> String {
    let mut s = format!("#{} from {} to {}, {} ago", m.id, m.from, m.to.join(","), ago(now, m.created_ms));
    if let Some(r) = m.reply_to {
        s.push_str(&format!(", reply to #{r}"));
    }
    if m.ask {
        s.push_str(", a question to the operator");
    }
    if m.urgent {
        s.push_str(", urgent");
    }
    s.push('\n');
    for r in &m.receipts {
        s.push_str(&format!("  {}: {}{} {} ago\n", r.recipient, r.state.label(), detail(&r.detail), ago(now, r.at_ms)));
    }
    s.push('\n');
    s.push_str(m.body.trim_end());
    s.push('\n');
    s
}
