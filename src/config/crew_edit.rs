//! Changing the crew file as a person would: an agent's table added at the end or taken out, every comment,
//! blank line and other table left as it was. Text in, text out; the caller checks the result parses as a crew.

use toml_edit::{value, Array, ArrayOfTables, DocumentMut, Item, Table};

pub use crate::protocol::NewAgent;

/// The crew file with `new` as its last `[[agent]]`; an error when the file is not TOML, its `agent` is not a
/// list of tables, or an agent of that name is there already.
pub fn add_agent(text: &str, new: &NewAgent) -> Result<String, String> {
    let mut doc: DocumentMut = text.parse().map_err(|e| format!("the crew file is not TOML: {e}"))?;
    let agents = doc.entry("agent").or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()));
    let Some(agents) = agents.as_array_of_tables_mut() else {
        return Err("`agent` in the crew file is not a list of [[agent]] tables".into());
    };
    if agents.iter().any(|t| t.get("name").and_then(|n| n.as_str()) == Some(new.name.as_str())) {
        return Err(format!("an agent named `{}` is in the crew already", new.name));
    }
    let mut t = Table::new();
    t.insert("name", value(&new.name));
    if let Some(kind) = &new.kind {
        t.insert("kind", value(kind));
    }
    if let Some(command) = &new.command {
        t.insert("command", value(command));
    }
    if !new.args.is_empty() {
        t.insert("args", value(new.args.iter().collect::<Array>()));
    }
    if let Some(prompt) = &new.prompt {
        t.insert("prompt", value(prompt));
    }
    if let Some(base) = &new.base {
        t.insert("base", value(base));
    }
    if let Some(role) = &new.role {
        t.insert("role", value(role));
    }
    if let Some(owns) = &new.owns {
        t.insert("owns", value(owns.iter().collect::<Array>()));
    }
    if let Some(parent) = &new.parent {
        t.insert("parent", value(parent));
    }
    agents.push(t);
    Ok(doc.to_string())
}

/// The crew file changed by `edit` on its `[[agent]]` tables; `None` when the file has none or `edit` finds no
/// agent to change. `taken`: a name the change gives, refused where an agent has it already.
fn edit_agents(
    text: &str,
    taken: Option<&str>,
    edit: impl FnOnce(&mut toml_edit::ArrayOfTables) -> bool,
) -> Result<Option<String>, String> {
    let mut doc: DocumentMut = text.parse().map_err(|e| format!("the crew file is not TOML: {e}"))?;
    let Some(agents) = doc.get_mut("agent").and_then(|a| a.as_array_of_tables_mut()) else { return Ok(None) };
    if let Some(new_name) = taken.filter(|n| agents.iter().any(|t| named(t, n))) {
        return Err(format!("an agent named `{new_name}` is in the crew already"));
    }
    Ok(edit(agents).then(|| doc.to_string()))
}

fn named(t: &Table, n: &str) -> bool {
    t.get("name").and_then(|v| v.as_str()) == Some(n)
}

/// The crew file with a copy of agent `name`'s table, named `new_name`, after the last agent: the same kind or
/// command, arguments, prompt and base (its own worktree and branch come with its name). `None` when the file
/// has no agent `name` (one of an earlier session, no longer in the file).
pub fn duplicate_agent(text: &str, name: &str, new_name: &str) -> Result<Option<String>, String> {
    edit_agents(text, Some(new_name), |agents| {
        let Some(mut copy) = agents.iter().find(|t| named(t, name)).cloned() else { return false };
        copy.insert("name", value(new_name));
        // Its comments were written about the original.
        copy.decor_mut().clear();
        agents.push(copy);
        true
    })
}

/// The crew file with agent `name`'s table named `new_name` (its comments and every other field kept); `None`
/// when the file has no agent `name`.
pub fn rename_agent(text: &str, name: &str, new_name: &str) -> Result<Option<String>, String> {
    edit_agents(text, Some(new_name), |agents| {
        let Some(table) = agents.iter_mut().find(|t| named(t, name)) else { return false };
        // The value alone: a comment after it on its line stays.
        if let Some(v) = table.get_mut("name").and_then(|i| i.as_value_mut()) {
            let decor = v.decor().clone();
            *v = new_name.into();
            *v.decor_mut() = decor;
        }
        // Its children follow it to its new name.
        for t in agents.iter_mut().filter(|t| t.get("parent").and_then(|p| p.as_str()) == Some(name)) {
            if let Some(v) = t.get_mut("parent").and_then(|i| i.as_value_mut()) {
                let decor = v.decor().clone();
                *v = new_name.into();
                *v.decor_mut() = decor;
            }
        }
        true
    })
}

/// The crew file without the agent `name`'s table; `None` when it has no such agent.
pub fn remove_agent(text: &str, name: &str) -> Result<Option<String>, String> {
    edit_agents(text, None, |agents| {
        let Some(at) = agents.iter().position(|t| named(t, name)) else { return false };
        agents.remove(at);
        // Its children stay, as the operator's own: a parent that is gone is no one's to name.
        for t in agents.iter_mut().filter(|t| t.get("parent").and_then(|p| p.as_str()) == Some(name)) {
            t.remove("parent");
        }
        true
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# The crew of acme.\n[defaults]\nbase = \"main\"   # where they start\n\n\
                        # Plans the work.\n[[agent]]\nname = \"planner\"\nkind = \"claude\"\n\n\
                        # Writes the API.\n[[agent]]\nname = \"api\"\nkind = \"codex\"\n";

    #[test]
    fn a_parents_children_follow_its_rename_and_outlive_its_removal() {
        let text = format!("{FILE}\n[[agent]]\nname = \"c1\"\nkind = \"demo\"\nparent = \"api\"   # spawned\n");
        let renamed = rename_agent(&text, "api", "server").unwrap().unwrap();
        assert!(renamed.contains("parent = \"server\"   # spawned"), "{renamed}");
        let removed = remove_agent(&text, "api").unwrap().unwrap();
        assert!(!removed.contains("parent") && removed.contains("name = \"c1\""), "{removed}");
    }

    #[test]
    fn a_rename_changes_the_name_alone() {
        let text = FILE.replace("name = \"api\"", "name = \"api\"   # the API's writer");
        let out = rename_agent(&text, "api", "server").unwrap().unwrap();
        assert_eq!(out, text.replace("name = \"api\"", "name = \"server\""));
        assert_eq!(rename_agent(&text, "nobody", "x").unwrap(), None);
        assert!(rename_agent(&text, "api", "planner").unwrap_err().contains("in the crew already"));
    }

    #[test]
    fn an_agent_is_added_at_the_end_and_every_comment_stays() {
        let new = NewAgent {
            name: "tests".into(),
            kind: Some("aider".into()),
            prompt: Some("Write the tests \"now\".".into()),
            ..Default::default()
        };
        let out = add_agent(FILE, &new).unwrap();
        assert!(out.starts_with(FILE), "what was there is kept as it was:\n{out}");
        let added = "\n\n[[agent]]\nname = \"tests\"\nkind = \"aider\"\nprompt = 'Write the tests \"now\".'\n";
        assert!(out.ends_with(added), "{out}");
        let crew = super::super::crew::parse_crew(
            std::path::Path::new("c.toml"),
            &out,
            &super::super::preset::builtin(),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(crew.agents.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["planner", "api", "tests"]);
        assert_eq!(crew.agents[2].prompt.as_deref(), Some("Write the tests \"now\"."));
        assert!(add_agent(&out, &new).unwrap_err().contains("`tests` is in the crew already"));
        // An empty file gets its first agent.
        let first = add_agent("", &NewAgent { name: "a".into(), command: Some("bash".into()), ..Default::default() });
        assert_eq!(first.unwrap(), "[[agent]]\nname = \"a\"\ncommand = \"bash\"\n");
    }

    #[test]
    fn an_agent_is_duplicated_with_everything_but_its_name() {
        let text = "[[agent]]\nname = \"api\"   # the API\nkind = \"codex\"\nprompt = \"Write it.\"\nbase = \"dev\"\n";
        let out = duplicate_agent(text, "api", "api-2").unwrap().unwrap();
        assert!(out.starts_with(text), "{out}");
        assert!(
            out.ends_with("[[agent]]\nname = \"api-2\"\nkind = \"codex\"\nprompt = \"Write it.\"\nbase = \"dev\"\n"),
            "{out}"
        );
        assert!(duplicate_agent(&out, "api", "api-2").unwrap_err().contains("`api-2` is in the crew already"));
        assert_eq!(duplicate_agent(text, "nobody", "x").unwrap(), None);
    }

    #[test]
    fn an_agent_is_taken_out_with_its_table_only() {
        let out = remove_agent(FILE, "planner").unwrap().unwrap();
        assert!(out.contains("# The crew of acme.") && out.contains("base = \"main\"   # where they start"), "{out}");
        assert!(!out.contains("planner") && out.contains("name = \"api\""), "{out}");
        assert_eq!(remove_agent(FILE, "nobody").unwrap(), None);
        assert_eq!(remove_agent("[defaults]\n", "a").unwrap(), None);
        assert!(remove_agent("agent = 3\n[", "a").is_err());
        assert!(add_agent("agent = 3\n", &NewAgent { name: "a".into(), ..Default::default() }).is_err());
    }
}
