//! Agent output built to exhaust memory: an OSC string that does not end, and combining marks stacked on one
//! character. The emulator keeps both unbounded; muster caps them before it sees them. Memory is measured on
//! this process, which holds the engine (one test in this binary, so nothing else grows it meanwhile).

mod common;

use common::Rig;

/// Peak and current resident memory of this process, in MiB.
fn memory_mib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap()
    };
    (kb("VmHWM:") / 1024, kb("VmRSS:") / 1024)
}

/// 64 MiB of an unterminated title, then 16 MiB of one combining mark (8 M marks on one `e`), then a line.
const CREW: &str = r#"
[[agent]]
name = "flood"
command = "bash"
args = ["-c", '''printf 'start\n\033]0;'; head -c 67108864 /dev/zero | tr '\0' a; printf '\a'; printf e; yes $'\xcc\x81' | tr -d '\n' | head -c 16777216; printf '\nDONE\n'; exec sleep 600''']
"#;

#[test]
fn an_endless_osc_string_and_a_flood_of_marks_stay_small() {
    let (_, before) = memory_mib();
    let mut rig = Rig::new(CREW, "flood");
    rig.wait_for("the flood's end", |r| r.screen_text("flood").contains("DONE"));
    let (peak, now) = memory_mib();
    eprintln!("resident memory: {before} MiB before, {peak} MiB at the peak, {now} MiB after");
    let title = rig.agents["flood"].title.clone().unwrap_or_default();
    assert!(title.chars().count() <= muster::term::model::MAX_TITLE, "title of {} chars", title.chars().count());
    let text = rig.screen_text("flood");
    let marks = text.chars().filter(|c| *c == '\u{301}').count();
    assert!(marks <= muster::term::guard::MAX_COMBINING, "{marks} marks kept");
    // Unbounded, the title alone took over 64 MiB (twice that while its buffer grew) and the marks 32 MiB more.
    assert!(peak < before + 48, "peak {peak} MiB from {before} MiB");
}
