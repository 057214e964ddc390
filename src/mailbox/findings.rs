//! The watchdog's findings in the crew's database (`mail.db`, schema 4): each one and what was done about it,
//! kept across restarts (the crew's history of its escapes).

use rusqlite::params;

use super::store::{classify, MailError, Store};
use crate::protocol::guard::{Finding, FindingKind, FindingStatus};

/// Findings kept per agent; older resolved ones are pruned.
pub const KEEP_FINDINGS: usize = 500;

const COLUMNS: &str = "id, agent, kind, path, detail, first_ms, last_ms, count, checkpoint_n, status, note";

fn finding_of(r: &rusqlite::Row) -> rusqlite::Result<Finding> {
    let kind: String = r.get(2)?;
    let status: String = r.get(9)?;
    Ok(Finding {
        id: r.get(0)?,
        agent: r.get(1)?,
        kind: FindingKind::parse(&kind),
        path: r.get(3)?,
        detail: r.get(4)?,
        first_ms: r.get::<_, i64>(5)? as u64,
        last_ms: r.get::<_, i64>(6)? as u64,
        count: r.get(7)?,
        checkpoint_n: r.get(8)?,
        status: FindingStatus::parse(&status).unwrap_or_default(),
        note: r.get(10)?,
    })
}

impl Store {
    /// Record a new finding; its id.
    pub fn finding_new(&mut self, f: &Finding) -> Result<i64, MailError> {
        let path = self.path().to_path_buf();
        let kind = f.kind.map_or("", FindingKind::key);
        self.conn
            .prepare_cached(
                "INSERT INTO findings (agent, kind, path, detail, first_ms, last_ms, count, checkpoint_n, status, note)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    f.agent,
                    kind,
                    f.path,
                    f.detail,
                    f.first_ms as i64,
                    f.last_ms as i64,
                    f.count,
                    f.checkpoint_n,
                    f.status.label(),
                    f.note
                ])
            })
            .map_err(|e| classify(&path, e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Bounded: the oldest resolved findings of `agent` past `KEEP_FINDINGS` go (once after a batch of new ones).
    pub fn findings_prune(&mut self, agent: &str) -> Result<(), MailError> {
        let path = self.path().to_path_buf();
        self.conn
            .prepare_cached(
                "DELETE FROM findings WHERE agent = ?1 AND status != 'open' AND id NOT IN
                 (SELECT id FROM findings WHERE agent = ?1 ORDER BY id DESC LIMIT ?2)",
            )
            .and_then(|mut st| st.execute(params![agent, KEEP_FINDINGS as i64]))
            .map_err(|e| classify(&path, e))?;
        Ok(())
    }

    /// Save what changed of a finding (seen again, resolved).
    pub fn finding_update(&mut self, f: &Finding) -> Result<(), MailError> {
        let path = self.path().to_path_buf();
        self.conn
            .prepare_cached(
                "UPDATE findings SET last_ms = ?2, count = ?3, status = ?4, note = ?5, detail = ?6 WHERE id = ?1",
            )
            .and_then(|mut st| st.execute(params![f.id, f.last_ms as i64, f.count, f.status.label(), f.note, f.detail]))
            .map_err(|e| classify(&path, e))?;
        Ok(())
    }

    /// Findings (of one agent), newest first; only open ones unless `all`; at most `limit`.
    pub fn findings(&self, agent: Option<&str>, all: bool, limit: usize) -> Result<Vec<Finding>, MailError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM findings WHERE (?1 IS NULL OR agent = ?1) AND (?2 OR status = 'open')
             ORDER BY id DESC LIMIT ?3"
        );
        let mut st = self.conn.prepare_cached(&sql).map_err(|e| classify(self.path(), e))?;
        let rows = st
            .query_map(params![agent, all, limit as i64], finding_of)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| classify(self.path(), e))?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_are_kept_updated_and_listed_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("mail.db")).unwrap();
        let mut f = Finding {
            agent: "api".into(),
            kind: Some(FindingKind::OutsideOwns),
            path: "src/db.rs".into(),
            count: 1,
            checkpoint_n: 3,
            ..Finding::default()
        };
        f.id = s.finding_new(&f).unwrap();
        let g = Finding { kind: Some(FindingKind::SymlinkEscape), path: "l".into(), ..f.clone() };
        let gid = s.finding_new(&g).unwrap();
        f.count = 2;
        f.status = FindingStatus::Restored;
        f.note = "restored from checkpoint 3".into();
        s.finding_update(&f).unwrap();
        let open = s.findings(Some("api"), false, 10).unwrap();
        assert_eq!(open.iter().map(|f| f.id).collect::<Vec<_>>(), vec![gid]);
        let all = s.findings(None, true, 10).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1], f, "read back as saved");
        drop(s);
        let s = Store::open(&dir.path().join("mail.db")).unwrap();
        assert_eq!(s.findings(Some("api"), true, 10).unwrap().len(), 2, "kept across a reopen");
        assert!(s.findings(Some("web"), true, 10).unwrap().is_empty());
    }
}
