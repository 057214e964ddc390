//! Words for counts and places in text, shared by every layer that says something to a person (a leaf: it
//! imports nothing).

/// `n` and the word, singular or plural: "1 file", "3 files", "0 agents".
pub fn counted(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}

/// A search pattern as a regex: all lower case means case does not count (as vim's smartcase). Its compiled
/// size is bounded: a pattern from a client cannot take the server's memory. The error is regex's last line.
pub fn search_regex(pattern: &str) -> Result<regex::Regex, String> {
    let caseless = !pattern.chars().any(char::is_uppercase);
    regex::RegexBuilder::new(pattern)
        .case_insensitive(caseless)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map_err(|e| e.to_string().lines().last().unwrap_or("not a regex").trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_as_words() {
        assert_eq!(counted(1, "file"), "1 file");
        assert_eq!(counted(0, "agent"), "0 agents");
        assert_eq!(counted(3, "conflict"), "3 conflicts");
    }
}
