//! The workbench's `n`: a new agent written as the crew file writes one, so what the operator learns here is
//! what the file says. The form is a few lines of TOML; what does not read is said, and the form stays open.

use crate::protocol::{Command, NewAgent};

/// The form as it opens: every field the crew file would take for a new agent, the known presets named.
pub fn template() -> Vec<String> {
    // The built-in kinds, read from memory (the key opens the form at once); the repository's own are listed by
    // `muster agents list`, and the server checks whichever kind is written.
    let presets: Vec<String> = crate::config::preset::builtin().into_keys().collect();
    vec![
        "name = \"\"".into(),
        "kind = \"claude\"".into(),
        format!("# kinds: {}", presets.join(", ")),
        "# command = \"…\"   (instead of a kind: any program)".into(),
        "prompt = \"\"       # what it is told first (optional)".into(),
        "base = \"\"         # the branch it starts from (optional)".into(),
    ]
}

/// The form's text as the command that adds the agent and starts it; why not, when it does not read. Whether
/// the kind is known and the name is free, the crew file's own check says (the engine refuses, saying why).
pub fn parse(text: &str) -> Result<Command, String> {
    let form: NewAgent = toml::from_str(text).map_err(|e| format!("new agent: {}", e.message()))?;
    let given = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let name = form.name.trim().to_string();
    if name.is_empty() {
        return Err("new agent: it needs a name".into());
    }
    crate::config::crew::validate_name(&name).map_err(|e| format!("new agent: {e}"))?;
    let (command, kind) = (given(form.command), given(form.kind));
    if command.is_none() && kind.is_none() {
        return Err("new agent: it needs a kind (a preset) or a command".into());
    }
    let agent = NewAgent {
        name,
        // A command of its own makes it a custom agent, whatever kind the form still says.
        kind: if command.is_some() { None } else { kind },
        command,
        args: form.args,
        prompt: given(form.prompt),
        base: given(form.base),
        ..Default::default()
    };
    Ok(Command::AddAgent { agent, start: true })
}

/// The copy form's text (`name = "…"`) as the command that adds a copy of `from` and starts it.
pub fn parse_copy(text: &str, from: &str) -> Result<Command, String> {
    let name = parse_name(text, &format!("copy of {from}"))?;
    Ok(Command::DuplicateAgent { name: from.to_string(), new_name: name, start: true })
}

/// The rename form's text (`name = "…"`) as the command that renames `from`.
pub fn parse_rename(text: &str, from: &str) -> Result<Command, String> {
    let name = parse_name(text, &format!("rename of {from}"))?;
    Ok(Command::Rename { name: from.to_string(), new_name: name })
}

/// The one field of a form that asks for a name, checked as the crew file checks it.
fn parse_name(text: &str, what: &str) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Copy {
        name: String,
    }
    let form: Copy = toml::from_str(text).map_err(|e| format!("{what}: {}", e.message()))?;
    let name = form.name.trim().to_string();
    crate::config::crew::validate_name(&name).map_err(|e| format!("{what}: {e}"))?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_as_it_opens_needs_only_a_name() {
        let mut form = template();
        assert!(parse(&form.join("\n")).unwrap_err().contains("needs a name"));
        form[0] = "name = \"reviewer\"".into();
        let Command::AddAgent { agent, start } = parse(&form.join("\n")).unwrap() else { panic!() };
        let NewAgent { name, kind, command, prompt, base, .. } = agent;
        assert_eq!(
            (name.as_str(), kind.as_deref(), command, prompt, base, start),
            ("reviewer", Some("claude"), None, None, None, true)
        );
    }

    #[test]
    fn a_copy_needs_only_a_safe_name() {
        let copy = parse_copy("name = \"api-2\"", "api").unwrap();
        assert_eq!(copy, Command::DuplicateAgent { name: "api".into(), new_name: "api-2".into(), start: true });
        assert!(parse_copy("name = \"../x\"", "api").unwrap_err().contains("not safe"));
        assert!(parse_copy("nam = \"x\"", "api").is_err());
    }

    #[test]
    fn a_command_a_prompt_and_mistakes() {
        let text = "name = \"lint\"\nkind = \"claude\"\ncommand = \"cargo\"\nprompt = \"watch it\"\nbase = \"dev\"\n";
        let Command::AddAgent { agent: NewAgent { kind, command, prompt, base, .. }, .. } = parse(text).unwrap() else {
            panic!()
        };
        assert_eq!(
            (kind, command.as_deref(), prompt.as_deref(), base.as_deref()),
            (None, Some("cargo"), Some("watch it"), Some("dev"))
        );
        assert!(parse("name = \"../x\"\nkind = \"claude\"\n").unwrap_err().contains("not safe"));
        assert!(parse("name = \"a\"\nkind = \"\"\n").unwrap_err().contains("needs a kind"));
        assert!(parse("name = \"a\"\nkidn = \"claude\"\n").unwrap_err().contains("unknown field `kidn`"));
        assert!(parse("name = \"a\n").is_err());
    }
}
