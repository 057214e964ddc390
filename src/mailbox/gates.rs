//! Gate runs and loops in the crew's database (`mail.db`, schema 3): what the gates view and `muster gate`
//! show, and the attempts and the guard's counts (each loop as the engine's JSON), which survive a restart.

use rusqlite::{params, OptionalExtension};

use super::store::{classify, MailError, Store};
use crate::protocol::gate::{GateOutcome, GateRun};

/// Runs kept per agent; older ones (and their logs) are pruned.
pub const KEEP_RUNS: usize = 200;

const RUN_COLUMNS: &str =
    "id, agent, gate, checkpoint, checkpoint_n, outcome, exit, why, attempt, attempts, failed, tail, started_ms, took_ms";

fn run_of(r: &rusqlite::Row) -> rusqlite::Result<GateRun> {
    let outcome: Option<String> = r.get(5)?;
    let failed: String = r.get(10)?;
    Ok(GateRun {
        id: r.get(0)?,
        agent: r.get(1)?,
        gate: r.get(2)?,
        checkpoint: r.get(3)?,
        checkpoint_n: r.get(4)?,
        outcome: outcome.as_deref().and_then(GateOutcome::parse),
        exit: r.get(6)?,
        why: r.get(7)?,
        attempt: r.get(8)?,
        attempts: r.get(9)?,
        failed: serde_json::from_str(&failed).unwrap_or_default(),
        tail: r.get(11)?,
        started_ms: r.get::<_, i64>(12)? as u64,
        took_ms: r.get::<_, i64>(13)? as u64,
    })
}

impl Store {
    fn sql(&self) -> impl Fn(rusqlite::Error) -> MailError + '_ {
        move |e| classify(self.path(), e)
    }

    /// Record a run that starts (`outcome` None); its id.
    pub fn gate_started(&mut self, run: &GateRun) -> Result<i64, MailError> {
        self.conn
            .prepare_cached(
                "INSERT INTO gate_runs (agent, gate, checkpoint, checkpoint_n, outcome, exit, why, attempt, attempts,
                 failed, tail, started_ms, took_ms) VALUES (?1, ?2, ?3, ?4, NULL, NULL, ?5, 0, ?6, '[]', '', ?7, 0)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    run.agent,
                    run.gate,
                    run.checkpoint,
                    run.checkpoint_n,
                    run.why,
                    run.attempts,
                    run.started_ms as i64
                ])
            })
            .map_err(self.sql())?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Record how a run ended.
    pub fn gate_ended(&mut self, run: &GateRun) -> Result<(), MailError> {
        let failed = serde_json::to_string(&run.failed).unwrap_or_else(|_| "[]".into());
        self.conn
            .prepare_cached(
                "UPDATE gate_runs SET outcome = ?2, exit = ?3, why = ?4, attempt = ?5, attempts = ?6, failed = ?7,
                 tail = ?8, took_ms = ?9 WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.execute(params![
                    run.id,
                    run.outcome.map(GateOutcome::label),
                    run.exit,
                    run.why,
                    run.attempt,
                    run.attempts,
                    failed,
                    run.tail,
                    run.took_ms as i64
                ])
            })
            .map_err(self.sql())?;
        Ok(())
    }

    /// Runs that were running when muster stopped: they ended with it, as errors (never the agent's).
    pub fn gate_runs_interrupted(&mut self) -> Result<usize, MailError> {
        self.conn
            .execute(
                "UPDATE gate_runs SET outcome = 'error', why = 'muster stopped while it ran' WHERE outcome IS NULL",
                [],
            )
            .map_err(self.sql())
    }

    /// The newest runs (of one agent), newest first.
    pub fn gate_runs(&self, agent: Option<&str>, limit: usize) -> Result<Vec<GateRun>, MailError> {
        let sql =
            format!("SELECT {RUN_COLUMNS} FROM gate_runs WHERE ?1 IS NULL OR agent = ?1 ORDER BY id DESC LIMIT ?2");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(self.sql())?;
        let rows = stmt.query_map(params![agent, limit as i64], run_of).map_err(self.sql())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.sql())
    }

    pub fn gate_run(&self, id: i64) -> Result<Option<GateRun>, MailError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM gate_runs WHERE id = ?1");
        self.conn.query_row(&sql, params![id], run_of).optional().map_err(self.sql())
    }

    /// Every agent's loops, by (agent, gate).
    pub fn gate_loops<L: serde::de::DeserializeOwned + Default>(&self) -> Result<Vec<(String, String, L)>, MailError> {
        let mut stmt = self.conn.prepare_cached("SELECT agent, gate, state FROM gate_loops").map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for row in rows {
            let (agent, gate, state) = row.map_err(self.sql())?;
            // A loop this muster cannot read starts over (it never blocks the agent).
            out.push((agent, gate, serde_json::from_str(&state).unwrap_or_default()));
        }
        Ok(out)
    }

    pub fn save_gate_loop(&mut self, agent: &str, gate: &str, state: &impl serde::Serialize) -> Result<(), MailError> {
        let text = serde_json::to_string(state).unwrap_or_default();
        self.conn
            .prepare_cached(
                "INSERT INTO gate_loops (agent, gate, state) VALUES (?1, ?2, ?3)
                 ON CONFLICT (agent, gate) DO UPDATE SET state = excluded.state",
            )
            .and_then(|mut st| st.execute(params![agent, gate, text]))
            .map_err(self.sql())?;
        Ok(())
    }

    /// Forget an agent's loops (it was removed).
    pub fn forget_gate_loops(&mut self, agent: &str) -> Result<(), MailError> {
        self.conn.execute("DELETE FROM gate_loops WHERE agent = ?1", params![agent]).map_err(self.sql())?;
        Ok(())
    }

    /// Drop an agent's runs beyond the newest `keep`; the ids dropped (their logs go too).
    pub fn prune_gate_runs(&mut self, agent: &str, keep: usize) -> Result<Vec<i64>, MailError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM gate_runs WHERE agent = ?1 ORDER BY id DESC LIMIT -1 OFFSET ?2")
            .map_err(self.sql())?;
        let ids = stmt
            .query_map(params![agent, keep as i64], |r| r.get::<_, i64>(0))
            .map_err(self.sql())?
            .collect::<rusqlite::Result<Vec<i64>>>()
            .map_err(self.sql())?;
        drop(stmt);
        for id in &ids {
            self.conn.execute("DELETE FROM gate_runs WHERE id = ?1", params![id]).map_err(self.sql())?;
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::guard::Loop;

    fn run(agent: &str) -> GateRun {
        GateRun {
            id: 0,
            agent: agent.into(),
            gate: "test".into(),
            checkpoint: "c0ffee".into(),
            checkpoint_n: 3,
            outcome: None,
            exit: None,
            why: "running".into(),
            attempt: 0,
            attempts: 4,
            failed: vec![],
            tail: String::new(),
            started_ms: 1000,
            took_ms: 0,
        }
    }

    #[test]
    fn runs_and_loops_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mail.db");
        let mut store = Store::open(&path).unwrap();
        let id = store.gate_started(&run("api")).unwrap();
        let ended = GateRun {
            id,
            outcome: Some(GateOutcome::Fail),
            exit: Some(1),
            why: "exit 1".into(),
            attempt: 1,
            failed: vec!["a::b".into()],
            tail: "boom\n".into(),
            took_ms: 40,
            ..run("api")
        };
        store.gate_ended(&ended).unwrap();
        let second = store.gate_started(&run("api")).unwrap();
        let l = Loop { steers: 2, granted: 1, ..Loop::default() };
        store.save_gate_loop("api", "test", &l).unwrap();
        drop(store);
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.gate_run(id).unwrap(), Some(ended));
        assert_eq!(store.gate_runs_interrupted().unwrap(), 1);
        let runs = store.gate_runs(Some("api"), 10).unwrap();
        assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), [second, id]);
        assert_eq!(runs[0].outcome, Some(GateOutcome::Error));
        assert_eq!(store.gate_loops::<Loop>().unwrap(), vec![("api".into(), "test".into(), l)]);
        for _ in 0..5 {
            store.gate_started(&run("api")).unwrap();
        }
        assert_eq!(store.prune_gate_runs("api", 3).unwrap().len(), 4);
        assert_eq!(store.gate_runs(None, 100).unwrap().len(), 3);
    }
}
