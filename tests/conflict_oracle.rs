//! The conflict parser and resolver against git as the oracle: random base/ours/theirs merged with
//! `git merge-file` in every style; the parser round-trips the bytes, and taking ours / theirs / both everywhere
//! equals `git merge-file --ours / --theirs / --union`.

use std::path::Path;
use std::process::Command;

use muster::conflict::{parse, Resolver, WholeFile};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(prop_oneof!["[abc]", "[abc]{2}", Just("same".to_string())], 0..8)
}

fn join(lines: &[String], crlf: bool, final_newline: bool) -> String {
    let eol = if crlf { "\r\n" } else { "\n" };
    let mut s = lines.join(eol);
    if final_newline && !lines.is_empty() {
        s.push_str(eol);
    }
    s
}

fn merge_file(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("git")
        .arg("merge-file")
        .arg("-p")
        .args(["-L", "ours", "-L", "base", "-L", "theirs"])
        .args(args)
        .args(["ours", "base", "theirs"])
        .current_dir(dir)
        .output()
        .expect("git runs");
    // Exit status is the number of conflicts (or negative on error), so only a signal is a failure here.
    assert!(out.status.code().is_some_and(|c| c >= 0), "git merge-file {args:?} failed");
    out.stdout
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn agrees_with_git_merge_file(
        base in text(), ours in text(), theirs in text(),
        style in 0usize..3, size in prop_oneof![Just(7usize), Just(3), Just(10)],
        crlf in any::<bool>(), final_newline in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base"), join(&base, crlf, final_newline)).unwrap();
        std::fs::write(dir.path().join("ours"), join(&ours, crlf, final_newline)).unwrap();
        std::fs::write(dir.path().join("theirs"), join(&theirs, crlf, final_newline)).unwrap();
        let size_arg = format!("--marker-size={size}");
        let mut args = vec![size_arg.as_str()];
        match style {
            1 => args.push("--diff3"),
            2 => args.push("--zdiff3"),
            _ => {}
        }
        let merged = merge_file(dir.path(), &args);
        let parsed = parse(&merged, size).unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&merged)));
        prop_assert_eq!(parsed.render(), merged.clone());
        if style > 0 {
            prop_assert!(parsed.conflicts().all(|c| c.base.is_some()));
        }
        // A side without a final newline gets one from git inside the markers, so the marker file alone cannot
        // tell "a" from "a\n" at the end: whole-file choices are compared where inputs end in a newline (for real
        // merges the index's stage blobs say which, and muster takes whole files from them).
        if !final_newline {
            return Ok(());
        }
        for (whole, flag) in [(WholeFile::Ours, "--ours"), (WholeFile::Theirs, "--theirs"), (WholeFile::Union, "--union")] {
            let mut r = Resolver::new(parsed.clone());
            r.whole_file(whole);
            // Same style: diff3 does not refine conflicts the way the default style does.
            let mut with_flag = args.clone();
            with_flag.push(flag);
            let expected = merge_file(dir.path(), &with_flag);
            prop_assert_eq!(
                String::from_utf8_lossy(&r.result()).into_owned(),
                String::from_utf8_lossy(&expected).into_owned(),
                "{} on {:?}", flag, String::from_utf8_lossy(&merged)
            );
        }
    }
}
