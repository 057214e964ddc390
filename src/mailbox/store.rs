//! `.muster/mail.db`: messages and, per recipient, a receipt and its history, in SQLite (WAL). Every change is
//! one transaction: a process killed between two changes leaves the one before, whole.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::receipt::{self, Invalid, Step};
use crate::protocol::mail::{Mail, MailMarks, Receipt, ReceiptState, OPERATOR};

pub const FILE: &str = "mail.db";

/// Each entry takes the schema one version up; `PRAGMA user_version` says how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: messages, the receipt of each recipient, and every step each receipt took.
    "CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        thread INTEGER NOT NULL,
        reply_to INTEGER,
        sender TEXT NOT NULL,
        to_label TEXT NOT NULL,
        body TEXT NOT NULL,
        urgent INTEGER NOT NULL,
        ask INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER
    );
    CREATE INDEX messages_by_thread ON messages(thread);
    CREATE INDEX messages_by_sender ON messages(sender, id);
    CREATE TABLE receipts (
        message INTEGER NOT NULL REFERENCES messages(id),
        recipient TEXT NOT NULL,
        state TEXT NOT NULL,
        detail TEXT,
        attempts INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        PRIMARY KEY (message, recipient)
    );
    CREATE INDEX receipts_by_recipient ON receipts(recipient, state, message);
    CREATE TABLE receipt_log (
        message INTEGER NOT NULL,
        recipient TEXT NOT NULL,
        state TEXT NOT NULL,
        detail TEXT,
        at_ms INTEGER NOT NULL
    );
    CREATE INDEX receipt_log_by_message ON receipt_log(message);",
    // 2: what the arbiter's timers ask (copies in a state; the few messages that expire) without a full scan.
    "CREATE INDEX receipts_by_state ON receipts(state, message);
    CREATE INDEX messages_expiring ON messages(expires_ms) WHERE expires_ms IS NOT NULL;",
    // 3: gates (issue #28): every run of a gate, and each agent's loop on each gate (steers, grants, the guard).
    "CREATE TABLE gate_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        agent TEXT NOT NULL,
        gate TEXT NOT NULL,
        checkpoint TEXT NOT NULL,
        checkpoint_n INTEGER NOT NULL,
        outcome TEXT,
        exit INTEGER,
        why TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        failed TEXT NOT NULL,
        tail TEXT NOT NULL,
        started_ms INTEGER NOT NULL,
        took_ms INTEGER NOT NULL
    );
    CREATE INDEX gate_runs_by_agent ON gate_runs(agent, id);
    CREATE TABLE gate_loops (
        agent TEXT NOT NULL,
        gate TEXT NOT NULL,
        state TEXT NOT NULL,
        PRIMARY KEY (agent, gate)
    );",
    // 4: ownership and the watchdog (issue #29): every finding and what was done about it.
    "CREATE TABLE findings (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        agent TEXT NOT NULL,
        kind TEXT NOT NULL,
        path TEXT NOT NULL,
        detail TEXT NOT NULL,
        first_ms INTEGER NOT NULL,
        last_ms INTEGER NOT NULL,
        count INTEGER NOT NULL,
        checkpoint_n INTEGER NOT NULL,
        status TEXT NOT NULL,
        note TEXT NOT NULL
    );
    CREATE INDEX findings_by_agent ON findings(agent, id);",
];

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("{path} is not a readable mail database (corrupt?): move it aside and muster starts a new one ({source})")]
    Corrupt { path: PathBuf, source: rusqlite::Error },
    #[error("{path} is locked by another process ({source})")]
    Locked { path: PathBuf, source: rusqlite::Error },
    #[error("{path} has schema version {found}; this muster knows versions up to {known}: use a newer muster")]
    TooNew { path: PathBuf, found: i64, known: usize },
    #[error("{path}: {source}")]
    Sql { path: PathBuf, source: rusqlite::Error },
    #[error("{0}")]
    Unsafe(String),
    #[error("no message #{0}")]
    NoSuchMessage(i64),
    #[error("message #{0} was not sent to {1}")]
    NotARecipient(i64, String),
    #[error("message #{id} to {recipient}: {source}")]
    Step { id: i64, recipient: String, source: Invalid },
    #[error("a message needs a text")]
    Empty,
    #[error("{0}")]
    TooLong(String),
    #[error("a message needs a recipient")]
    NoRecipient,
    #[error("killed before the change was committed (test)")]
    Killed,
}

/// A message about to be sent.
#[derive(Debug, Clone, Default)]
pub struct NewMail {
    pub from: String,
    /// As written (names, or `crew`).
    pub to: Vec<String>,
    /// Who gets a copy: `to` with `crew` expanded.
    pub recipients: Vec<String>,
    pub body: String,
    pub urgent: bool,
    pub ask: bool,
    pub reply_to: Option<i64>,
    pub expires_ms: Option<u64>,
}

/// One step in a receipt's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub recipient: String,
    pub state: ReceiptState,
    pub detail: Option<String>,
    pub at_ms: u64,
}

pub struct Store {
    pub(super) conn: Connection,
    path: PathBuf,
    /// Tests: after this many more changes, the next one dies before its commit, as a kill would leave it.
    pub kill_after: Option<u32>,
}

const MAIL_COLUMNS: &str = "id, thread, reply_to, sender, to_label, body, urgent, ask, created_ms";

impl Store {
    /// Open (or create) the database at `path`, bringing its schema up to date; a symlink at `path` is not
    /// followed.
    pub fn open(path: &Path) -> Result<Store, MailError> {
        use rusqlite::OpenFlags as F;
        let flags =
            F::SQLITE_OPEN_READ_WRITE | F::SQLITE_OPEN_CREATE | F::SQLITE_OPEN_NOFOLLOW | F::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| classify(path, e))?;
        let mut store = Store { conn, path: path.to_path_buf(), kill_after: None };
        store.prepare().map_err(|e| store.classify(e))?;
        store.migrate()?;
        Ok(store)
    }

    /// The crew's mailbox: `<repo>/.muster/mail.db`.
    /// A clone may commit `.muster` or `mail.db` (or its companions) as symlinks to another database of the
    /// user's: `.muster` must be a real folder, and the files regular files of this user, created 0600 (mail can
    /// hold secrets; SQLite gives the companions the database's mode).
    pub fn open_in(root: &Path) -> Result<Store, MailError> {
        let unsafe_file = |e: anyhow::Error| MailError::Unsafe(format!("{e:#}"));
        let dir = crate::safefs::real_dir(root, ".muster").map_err(unsafe_file)?;
        let path = dir.join(FILE);
        crate::safefs::own_private_file(&path, 0o600, true).map_err(unsafe_file)?;
        for companion in ["-wal", "-shm", "-journal"] {
            let p = dir.join(format!("{FILE}{companion}"));
            crate::safefs::own_private_file(&p, 0o600, false).map_err(unsafe_file)?;
        }
        Store::open(&path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn classify(&self, e: rusqlite::Error) -> MailError {
        classify(&self.path, e)
    }

    fn prepare(&self) -> rusqlite::Result<()> {
        self.conn.busy_timeout(Duration::from_secs(2))?;
        // Reading a page first is what tells a garbage file from a database.
        let _: i64 = self.conn.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
        let mode: String = self.conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if mode != "wal" {
            tracing::warn!("{}: journal mode {mode}, not WAL", self.path.display());
        }
        // In WAL, NORMAL loses nothing to a killed process (only, at worst, the last changes to a power cut).
        self.conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")?;
        Ok(())
    }

    fn migrate(&mut self) -> Result<(), MailError> {
        let version: i64 =
            self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| self.classify(e))?;
        if version > MIGRATIONS.len() as i64 {
            return Err(MailError::TooNew { path: self.path.clone(), found: version, known: MIGRATIONS.len() });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate);
            let run = tx.and_then(|tx| {
                tx.execute_batch(sql)?;
                tx.pragma_update(None, "user_version", i as i64 + 1)?;
                tx.commit()
            });
            run.map_err(|e| classify(&self.path, e))?;
        }
        Ok(())
    }

    /// Store a message and a queued receipt for each recipient (mail to the operator is in the mailbox at
    /// once). A reply acknowledges the message it answers, for the one who replies.
    pub fn send(&mut self, new: &NewMail, now_ms: u64) -> Result<Mail, MailError> {
        if new.body.trim().is_empty() {
            return Err(MailError::Empty);
        }
        crate::protocol::mail::check_body(&new.body).map_err(MailError::TooLong)?;
        let mut recipients: Vec<String> = Vec::new();
        for r in &new.recipients {
            if !recipients.contains(r) {
                recipients.push(r.clone());
            }
        }
        if recipients.is_empty() {
            return Err(MailError::NoRecipient);
        }
        let path = self.path.clone();
        let sql = |e| classify(&path, e);
        let parent = match new.reply_to {
            Some(id) => Some(self.get(id)?.ok_or(MailError::NoSuchMessage(id))?),
            None => None,
        };
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
        tx.execute(
            "INSERT INTO messages (thread, reply_to, sender, to_label, body, urgent, ask, created_ms, expires_ms)
             VALUES (0, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                new.reply_to,
                new.from,
                new.to.join(","),
                new.body,
                new.urgent,
                new.ask,
                now_ms as i64,
                new.expires_ms.map(|t| t as i64)
            ],
        )
        .map_err(sql)?;
        let id = tx.last_insert_rowid();
        let thread = parent.as_ref().map_or(id, |p| p.thread);
        tx.execute("UPDATE messages SET thread = ?1 WHERE id = ?2", params![thread, id]).map_err(sql)?;
        let mut steps = Vec::new();
        for r in &recipients {
            let (state, detail) = if r == OPERATOR {
                (ReceiptState::Delivered, Some("mailbox".to_string()))
            } else {
                (ReceiptState::Queued, None)
            };
            let receipt = Receipt { recipient: r.clone(), state, detail, attempts: 0, at_ms: now_ms };
            write_receipt(&tx, id, &receipt, true).map_err(sql)?;
        }
        if let Some(p) = &parent {
            if let Some(r) = p.receipt(&new.from).filter(|r| r.state.reached() && r.state != ReceiptState::Acked) {
                let next = receipt::apply(r, &Step::Ack(format!("reply #{id}")), now_ms)
                    .map_err(|source| MailError::Step { id: p.id, recipient: new.from.clone(), source })?;
                steps.push((p.id, next));
            }
        }
        for (pid, next) in &steps {
            write_receipt(&tx, *pid, next, false).map_err(sql)?;
        }
        commit(tx, &mut self.kill_after, &path)?;
        self.get(id)?.ok_or(MailError::NoSuchMessage(id))
    }

    /// Take one step of a receipt.
    pub fn apply(&mut self, id: i64, recipient: &str, step: &Step, now_ms: u64) -> Result<Receipt, MailError> {
        self.apply_all(&[(id, recipient.to_string(), step.clone())], now_ms).map(|mut v| v.remove(0))
    }

    /// Take several steps in one transaction (a delivery of several mails): all, or none.
    pub fn apply_all(&mut self, steps: &[(i64, String, Step)], now_ms: u64) -> Result<Vec<Receipt>, MailError> {
        let path = self.path.clone();
        let sql = |e| classify(&path, e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
        let mut out = Vec::new();
        for (id, recipient, step) in steps {
            let current = read_receipt(&tx, *id, recipient).map_err(sql)?;
            let current = match current {
                Some(r) => r,
                None if message_exists(&tx, *id).map_err(sql)? => {
                    return Err(MailError::NotARecipient(*id, recipient.clone()))
                }
                None => return Err(MailError::NoSuchMessage(*id)),
            };
            let next = receipt::apply(&current, step, now_ms).map_err(|source| MailError::Step {
                id: *id,
                recipient: recipient.clone(),
                source,
            })?;
            write_receipt(&tx, *id, &next, false).map_err(sql)?;
            out.push(next);
        }
        commit(tx, &mut self.kill_after, &path)?;
        Ok(out)
    }

    pub fn get(&self, id: i64) -> Result<Option<Mail>, MailError> {
        let sql = format!("SELECT {MAIL_COLUMNS} FROM messages WHERE id = ?1");
        let mail = self.conn.query_row(&sql, [id], mail_row).optional().map_err(|e| self.classify(e))?;
        let Some(mut mail) = mail else { return Ok(None) };
        mail.receipts = self.receipts_of(&[id])?.remove(&id).unwrap_or_default();
        Ok(Some(mail))
    }

    /// Messages matching `filter` (an SQL condition on `messages m`, with `?1` bound to `arg`), newest first.
    fn select(&self, filter: &str, arg: &str, limit: usize) -> Result<Vec<Mail>, MailError> {
        let sql = format!(
            "SELECT {} FROM messages m WHERE {filter} ORDER BY m.id DESC LIMIT {limit}",
            MAIL_COLUMNS.split(", ").map(|c| format!("m.{c}")).collect::<Vec<_>>().join(", ")
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.classify(e))?;
        let mut mails: Vec<Mail> = stmt
            .query_map([arg], mail_row)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<Mail>>>())
            .map_err(|e| self.classify(e))?;
        drop(stmt);
        let ids: Vec<i64> = mails.iter().map(|m| m.id).collect();
        let mut receipts = self.receipts_of(&ids)?;
        for m in &mut mails {
            m.receipts = receipts.remove(&m.id).unwrap_or_default();
        }
        Ok(mails)
    }

    /// The newest `limit` messages of the crew.
    pub fn recent(&self, limit: usize) -> Result<Vec<Mail>, MailError> {
        self.select("?1 = ?1", "", limit)
    }

    /// The messages whose ids `sql` (one `?1`, bound to `arg`) lists, in its order: each query goes through
    /// an index, never through every message.
    fn by_ids(&self, sql: &str, arg: &str) -> Result<Vec<Mail>, MailError> {
        let ids: Vec<i64> = {
            let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.classify(e))?;
            let rows = stmt.query_map([arg], |r| r.get(0)).and_then(|rows| rows.collect::<rusqlite::Result<_>>());
            rows.map_err(|e| self.classify(e))?
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(self.get(id)?);
        }
        Ok(out)
    }

    /// What `name` sent or was sent, newest first.
    pub fn involving(&self, name: &str, limit: usize) -> Result<Vec<Mail>, MailError> {
        let sql = format!(
            "SELECT id FROM messages WHERE sender = ?1 UNION SELECT message FROM receipts WHERE recipient = ?1
             ORDER BY 1 DESC LIMIT {limit}"
        );
        self.by_ids(&sql, name)
    }

    /// Mail for `name`, newest first; `unread`: only what it has not seen yet.
    pub fn inbox(&self, name: &str, unread: bool, limit: usize) -> Result<Vec<Mail>, MailError> {
        let states = if unread { "IN ('queued','held','delivering','delivered')" } else { "!= 'dropped'" };
        let sql = format!(
            "SELECT message FROM receipts WHERE recipient = ?1 AND state {states} ORDER BY message DESC LIMIT {limit}"
        );
        self.by_ids(&sql, name)
    }

    /// Mail queued for `name`, oldest first: what the next delivery takes.
    pub fn queued_for(&self, name: &str) -> Result<Vec<Mail>, MailError> {
        self.by_ids("SELECT message FROM receipts WHERE recipient = ?1 AND state = 'queued' ORDER BY message", name)
    }

    /// How many copies are queued for `name`, and how many of them urgent.
    pub fn queued_count(&self, name: &str) -> Result<(u32, u32), MailError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT COUNT(*), COALESCE(SUM(m.urgent), 0) FROM receipts r JOIN messages m ON m.id = r.message
                 WHERE r.recipient = ?1 AND r.state = 'queued'",
            )
            .map_err(|e| self.classify(e))?;
        stmt.query_row([name], |r| Ok((r.get::<_, i64>(0)? as u32, r.get::<_, i64>(1)? as u32)))
            .map_err(|e| self.classify(e))
    }

    /// Every (message, recipient) whose receipt is in `state`.
    pub fn in_state(&self, state: ReceiptState) -> Result<Vec<(i64, String)>, MailError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT message, recipient FROM receipts WHERE state = ?1 ORDER BY message")
            .map_err(|e| self.classify(e))?;
        let rows = stmt
            .query_map([state.label()], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<(i64, String)>>>());
        rows.map_err(|e| self.classify(e))
    }

    /// Queued or held copies whose message is past its expiry.
    pub fn expired(&self, now_ms: u64) -> Result<Vec<(i64, String)>, MailError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT r.message, r.recipient FROM receipts r JOIN messages m ON m.id = r.message
                 WHERE r.state IN ('queued','held') AND m.expires_ms IS NOT NULL AND m.expires_ms <= ?1",
            )
            .map_err(|e| self.classify(e))?;
        let rows = stmt
            .query_map([now_ms as i64], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<(i64, String)>>>());
        rows.map_err(|e| self.classify(e))
    }

    /// When the next queued or held copy expires (ms since the epoch).
    pub fn next_expiry(&self) -> Result<Option<u64>, MailError> {
        let sql = "SELECT MIN(m.expires_ms) FROM messages m WHERE m.expires_ms IS NOT NULL
                   AND EXISTS (SELECT 1 FROM receipts r WHERE r.message = m.id AND r.state IN ('queued','held'))";
        let v: Option<i64> = self.conn.query_row(sql, [], |r| r.get(0)).map_err(|e| self.classify(e))?;
        Ok(v.map(|v| v as u64))
    }

    /// Every step a message's receipts took, oldest first.
    pub fn history(&self, id: i64) -> Result<Vec<LogEntry>, MailError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT recipient, state, detail, at_ms FROM receipt_log WHERE message = ?1 ORDER BY rowid")
            .map_err(|e| self.classify(e))?;
        let rows = stmt
            .query_map([id], |r| {
                let state: String = r.get(1)?;
                Ok(LogEntry {
                    recipient: r.get(0)?,
                    state: ReceiptState::parse(&state).unwrap_or(ReceiptState::Dead),
                    detail: r.get(2)?,
                    at_ms: r.get::<_, i64>(3)? as u64,
                })
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<LogEntry>>>());
        rows.map_err(|e| self.classify(e))
    }

    /// What the roster shows of an agent's mail.
    pub fn marks_of(&self, name: &str) -> Result<MailMarks, MailError> {
        let count = |sql: &str| -> Result<u32, MailError> {
            let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.classify(e))?;
            let n: i64 = stmt.query_row([name], |r| r.get(0)).map_err(|e| self.classify(e))?;
            Ok(n as u32)
        };
        let unread = count(
            "SELECT COUNT(*) FROM receipts r JOIN messages m ON m.id = r.message
             WHERE r.recipient = 'operator' AND r.state = 'delivered' AND m.sender = ?1",
        )?;
        let pending =
            count("SELECT COUNT(*) FROM receipts WHERE recipient = ?1 AND state IN ('queued','held','delivering')")?;
        let dead = count("SELECT COUNT(*) FROM receipts WHERE recipient = ?1 AND state = 'dead'")?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT m.body FROM messages m JOIN receipts r ON r.message = m.id
                 WHERE m.sender = ?1 AND m.ask = 1 AND r.recipient = 'operator' AND r.state IN ('delivered','seen')
                 ORDER BY m.id DESC LIMIT 1",
            )
            .map_err(|e| self.classify(e))?;
        let asking = stmt.query_row([name], |r| r.get(0)).optional().map_err(|e| self.classify(e))?;
        Ok(MailMarks { unread, pending, dead, asking })
    }

    pub fn count(&self) -> Result<u64, MailError> {
        let n: i64 =
            self.conn.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0)).map_err(|e| self.classify(e))?;
        Ok(n as u64)
    }

    fn receipts_of(&self, ids: &[i64]) -> Result<HashMap<i64, Vec<Receipt>>, MailError> {
        let mut out: HashMap<i64, Vec<Receipt>> = HashMap::new();
        let (Some(lo), Some(hi)) = (ids.iter().min(), ids.iter().max()) else { return Ok(out) };
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT message, recipient, state, detail, attempts, at_ms FROM receipts
                 WHERE message BETWEEN ?1 AND ?2 ORDER BY message, rowid",
            )
            .map_err(|e| self.classify(e))?;
        let wanted: std::collections::HashSet<i64> = ids.iter().copied().collect();
        let rows = stmt
            .query_map([lo, hi], |r| Ok((r.get::<_, i64>(0)?, receipt_row(r, 1)?)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.classify(e))?;
        for (id, receipt) in rows {
            if wanted.contains(&id) {
                out.entry(id).or_default().push(receipt);
            }
        }
        Ok(out)
    }
}

/// Commit a change, unless a test's kill comes first (then nothing of it was written).
fn commit(tx: rusqlite::Transaction, kill_after: &mut Option<u32>, path: &Path) -> Result<(), MailError> {
    match kill_after {
        Some(0) => return Err(MailError::Killed),
        Some(n) => *n -= 1,
        None => {}
    }
    tx.commit().map_err(|e| classify(path, e))
}

pub(super) fn classify(path: &Path, e: rusqlite::Error) -> MailError {
    use rusqlite::ErrorCode as C;
    let path = path.to_path_buf();
    match e.sqlite_error_code() {
        Some(C::NotADatabase | C::DatabaseCorrupt) => MailError::Corrupt { path, source: e },
        Some(C::DatabaseBusy | C::DatabaseLocked) => MailError::Locked { path, source: e },
        _ => MailError::Sql { path, source: e },
    }
}

fn mail_row(r: &rusqlite::Row) -> rusqlite::Result<Mail> {
    let to: String = r.get(4)?;
    Ok(Mail {
        id: r.get(0)?,
        thread: r.get(1)?,
        reply_to: r.get(2)?,
        from: r.get(3)?,
        to: to.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
        body: r.get(5)?,
        urgent: r.get(6)?,
        ask: r.get(7)?,
        created_ms: r.get::<_, i64>(8)? as u64,
        receipts: Vec::new(),
    })
}

fn receipt_row(r: &rusqlite::Row, at: usize) -> rusqlite::Result<Receipt> {
    let state: String = r.get(at + 1)?;
    Ok(Receipt {
        recipient: r.get(at)?,
        // A state this muster does not know (a newer one wrote it) reads as dead: visible, retryable.
        state: ReceiptState::parse(&state).unwrap_or(ReceiptState::Dead),
        detail: r.get(at + 2)?,
        attempts: r.get(at + 3)?,
        at_ms: r.get::<_, i64>(at + 4)? as u64,
    })
}

fn read_receipt(tx: &rusqlite::Transaction, id: i64, recipient: &str) -> rusqlite::Result<Option<Receipt>> {
    tx.query_row(
        "SELECT recipient, state, detail, attempts, at_ms FROM receipts WHERE message = ?1 AND recipient = ?2",
        params![id, recipient],
        |r| receipt_row(r, 0),
    )
    .optional()
}

fn message_exists(tx: &rusqlite::Transaction, id: i64) -> rusqlite::Result<bool> {
    tx.query_row("SELECT 1 FROM messages WHERE id = ?1", [id], |_| Ok(())).optional().map(|o| o.is_some())
}

fn write_receipt(tx: &rusqlite::Transaction, id: i64, r: &Receipt, new: bool) -> rusqlite::Result<()> {
    let at = r.at_ms as i64;
    if new {
        tx.execute(
            "INSERT INTO receipts (message, recipient, state, detail, attempts, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id, r.recipient, r.state.label(), r.detail, r.attempts, at],
        )?;
    } else {
        tx.execute(
            "UPDATE receipts SET state = ?3, detail = ?4, attempts = ?5, at_ms = ?6 WHERE message = ?1 AND recipient = ?2",
            params![id, r.recipient, r.state.label(), r.detail, r.attempts, at],
        )?;
    }
    tx.execute(
        "INSERT INTO receipt_log (message, recipient, state, detail, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, r.recipient, r.state.label(), r.detail, at],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn mail(from: &str, to: &[&str], body: &str) -> NewMail {
        NewMail {
            from: from.into(),
            to: to.iter().map(|s| s.to_string()).collect(),
            recipients: to.iter().map(|s| s.to_string()).collect(),
            body: body.into(),
            ..Default::default()
        }
    }

    #[test]
    fn send_deliver_reply_threads_and_acks() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join(FILE)).unwrap();
        let m = s.send(&mail("planner", &["api", "docs"], "add a test"), 10).unwrap();
        assert_eq!((m.id, m.thread, m.receipts.len()), (1, 1, 2));
        assert!(m.receipts.iter().all(|r| r.state == ReceiptState::Queued));
        assert_eq!(s.queued_for("api").unwrap().len(), 1);
        s.apply(1, "api", &Step::Attempt, 11).unwrap();
        s.apply(1, "api", &Step::Confirm("typed".into()), 12).unwrap();
        s.apply(1, "api", &Step::Seen, 12).unwrap();
        assert!(s.queued_for("api").unwrap().is_empty());
        let reply = s.send(&NewMail { reply_to: Some(1), ..mail("api", &["planner"], "done") }, 13).unwrap();
        assert_eq!((reply.thread, reply.reply_to), (1, Some(1)));
        let m = s.get(1).unwrap().unwrap();
        assert_eq!(m.receipt("api").unwrap().state, ReceiptState::Acked);
        assert_eq!(m.receipt("api").unwrap().detail.as_deref(), Some("reply #2"));
        assert_eq!(m.receipt("docs").unwrap().state, ReceiptState::Queued);
        let steps: Vec<ReceiptState> =
            s.history(1).unwrap().into_iter().filter(|e| e.recipient == "api").map(|e| e.state).collect();
        use ReceiptState::*;
        assert_eq!(steps, [Queued, Delivering, Delivered, Seen, Acked]);
        assert_eq!(s.inbox("planner", true, 10).unwrap().len(), 1);
        assert_eq!(s.involving("docs", 10).unwrap().len(), 1);
        assert_eq!(s.recent(10).unwrap().iter().map(|m| m.id).collect::<Vec<_>>(), [2, 1]);
    }

    #[test]
    fn an_ask_marks_the_agent_until_answered() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join(FILE)).unwrap();
        let ask = s.send(&NewMail { ask: true, ..mail("docs", &["operator"], "Mention it in the README?") }, 1);
        let ask = ask.unwrap();
        assert_eq!(ask.receipt(OPERATOR).unwrap().state, ReceiptState::Delivered);
        let marks = s.marks_of("docs").unwrap();
        assert_eq!(marks.asking.as_deref(), Some("Mention it in the README?"));
        assert_eq!(marks.unread, 1);
        s.apply(ask.id, OPERATOR, &Step::Seen, 2).unwrap();
        assert_eq!(s.marks_of("docs").unwrap().unread, 0);
        s.send(&NewMail { reply_to: Some(ask.id), ..mail("operator", &["docs"], "yes") }, 3).unwrap();
        let marks = s.marks_of("docs").unwrap();
        assert_eq!((marks.asking.as_deref(), marks.pending), (None, 1));
    }

    #[test]
    fn bad_requests_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join(FILE)).unwrap();
        assert!(matches!(s.send(&mail("a", &["b"], "  "), 1), Err(MailError::Empty)));
        assert!(matches!(s.send(&mail("a", &[], "x"), 1), Err(MailError::NoRecipient)));
        assert!(matches!(
            s.send(&NewMail { reply_to: Some(9), ..mail("a", &["b"], "x") }, 1),
            Err(MailError::NoSuchMessage(9))
        ));
        s.send(&mail("a", &["b"], "x"), 1).unwrap();
        assert!(matches!(s.apply(1, "c", &Step::Seen, 1), Err(MailError::NotARecipient(1, _))));
        let e = s.apply(1, "b", &Step::Seen, 1).unwrap_err();
        assert_eq!(e.to_string(), "message #1 to b: a queued message cannot be seen");
    }

    #[test]
    fn a_corrupt_or_newer_database_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        std::fs::write(&path, b"this is not a database, it is a text file that is long enough to have a header")
            .unwrap();
        let e = Store::open(&path).err().unwrap();
        assert!(matches!(e, MailError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("move it aside"), "{e}");
        let path = dir.path().join("new.db");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let e = Store::open(&path).err().unwrap();
        let want = format!("schema version 99; this muster knows versions up to {}", MIGRATIONS.len());
        assert!(e.to_string().contains(&want), "{e}");
    }

    #[test]
    fn an_older_database_is_migrated_and_keeps_its_mail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO messages (thread, sender, to_label, body, urgent, ask, created_ms) VALUES (1, 'a', 'b', 'old', 0, 0, 1)",
            [],
        )
        .unwrap();
        conn.execute("INSERT INTO receipts VALUES (1, 'b', 'queued', NULL, 0, 1)", []).unwrap();
        drop(conn);
        let s = Store::open(&path).unwrap();
        let v: i64 = s.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        assert_eq!(s.queued_for("b").unwrap()[0].body, "old");
    }

    #[test]
    fn a_locked_database_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let mut a = Store::open(&path).unwrap();
        let mut b = Store::open(&path).unwrap();
        b.conn.busy_timeout(Duration::from_millis(50)).unwrap();
        let tx = a.conn.transaction_with_behavior(TransactionBehavior::Immediate).unwrap();
        let e = b.send(&mail("a", &["b"], "x"), 1).unwrap_err();
        assert!(matches!(e, MailError::Locked { .. }), "{e}");
        drop(tx);
        b.send(&mail("a", &["b"], "x"), 1).unwrap();
    }

    /// What a client does to the mailbox, at random.
    #[derive(Debug, Clone)]
    enum Op {
        Send {
            from: u8,
            to: u8,
            reply: bool,
        },
        Step {
            pick: u8,
            step: u8,
        },
        /// The process dies before its next change commits, and is started again.
        Kill,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..4, 0u8..4, any::<bool>()).prop_map(|(from, to, reply)| Op::Send { from, to, reply }),
            6 => (any::<u8>(), 0u8..7).prop_map(|(pick, step)| Op::Step { pick, step }),
            1 => Just(Op::Kill),
        ]
    }

    const NAMES: [&str; 4] = ["a", "b", "c", "operator"];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        /// Random sends and steps, with kills between any two changes: every message whose send returned is
        /// there once, nothing is delivered twice, and what the store says is what a model of it says.
        #[test]
        fn nothing_sent_is_lost_nothing_is_delivered_twice(ops in proptest::collection::vec(op(), 1..50)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(FILE);
            let mut s = Store::open(&path).unwrap();
            let mut sent: Vec<i64> = Vec::new();
            let mut model: BTreeMap<(i64, String), ReceiptState> = BTreeMap::new();
            let mut kill_next = false;
            let mut t = 0;
            for op in ops {
                t += 1;
                if kill_next {
                    s.kill_after = Some(0);
                }
                let killed = kill_next;
                match op {
                    Op::Kill => { kill_next = true; continue; }
                    Op::Send { from, to, reply } => {
                        let (from, to) = (NAMES[from as usize], NAMES[to as usize]);
                        let reply_to = if reply { sent.last().copied() } else { None };
                        match s.send(&NewMail { reply_to, ..mail(from, &[to], &format!("m{t}")) }, t) {
                            Ok(m) => {
                                prop_assert!(!killed);
                                sent.push(m.id);
                                for r in &m.receipts {
                                    model.insert((m.id, r.recipient.clone()), r.state);
                                }
                                if let Some(p) = reply_to {
                                    if let Some(st) = model.get_mut(&(p, from.to_string())) {
                                        if st.reached() && *st != ReceiptState::Acked {
                                            *st = ReceiptState::Acked;
                                        }
                                    }
                                }
                            }
                            Err(e) => prop_assert!(killed, "{e}"),
                        }
                    }
                    Op::Step { pick, step } => {
                        if model.is_empty() { continue; }
                        let key = model.keys().nth(pick as usize % model.len()).unwrap().clone();
                        let step = match step {
                            0 => Step::Attempt,
                            1 => Step::Confirm("typed".into()),
                            2 => Step::Unconfirmed("no turn".into()),
                            3 => Step::Seen,
                            4 => Step::Ack("ack".into()),
                            5 => Step::Retry,
                            _ => Step::Kill("gone".into()),
                        };
                        let current = Receipt { recipient: key.1.clone(), state: model[&key], detail: None, attempts: 0, at_ms: 0 };
                        let expect = receipt::apply(&current, &step, t).map(|r| r.state);
                        match s.apply(key.0, &key.1, &step, t) {
                            Ok(r) => {
                                prop_assert!(!killed);
                                // The attempt counter is the store's: compare the states.
                                if let Ok(e) = expect { if step != Step::Unconfirmed("no turn".into()) { prop_assert_eq!(r.state, e); } }
                                model.insert(key, r.state);
                            }
                            Err(MailError::Killed) => prop_assert!(killed),
                            Err(MailError::Step { .. }) => prop_assert!(expect.is_err() || killed),
                            Err(e) => prop_assert!(false, "{e}"),
                        }
                    }
                }
                if killed {
                    // What a restart finds.
                    drop(s);
                    s = Store::open(&path).unwrap();
                    kill_next = false;
                }
            }
            drop(s);
            let s = Store::open(&path).unwrap();
            prop_assert_eq!(s.count().unwrap(), sent.len() as u64);
            for id in &sent {
                let m = s.get(*id).unwrap().unwrap();
                for r in &m.receipts {
                    prop_assert_eq!(Some(&r.state), model.get(&(m.id, r.recipient.clone())));
                    let deliveries = s.history(m.id).unwrap().iter()
                        .filter(|e| e.recipient == r.recipient && e.state == ReceiptState::Delivered).count();
                    prop_assert!(deliveries <= 1, "#{} to {} delivered {deliveries} times", m.id, r.recipient);
                }
            }
        }
    }
}
