#!/usr/bin/env python3
"""Real turns, offline: an agent CLI inside muster works a whole turn against scripts/mock_model.py, and the states
muster showed (its event log, to the millisecond) are set against what the model did (its log).

Not in CI (the CLIs are downloaded: scripts/compat-install.sh). The turn: the operator's prompt goes in by `s`
(steer); the model streams text (busy), asks for a shell command (the CLI's permission dialog: waiting); the
operator approves; the command runs and the answer streams (busy); the turn ends (idle at the prompt). Mail sent
while the agent is busy must be typed in only once it is back at its prompt. Per run it prints each phase, when
the model reached it, when muster showed the matching state (the lag) and how long it showed something else.

With --gate: a turn whose gate fails; its failure must reach the CLI as mail (never into a dialog), the mock
model answers it with a fix (another command, approved), and the gate passes on that turn's checkpoint.

Usage: scripts/turns.py [--cache DIR] [--runs N] [--cli claude] [--gate] [--enforce]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compat import ROOT, Tmux, base_env, end_processes_with_home, make_repo, run  # noqa: E402

PORT = 8765

# kind, crew fields, HOME seed, keys that reach the prompt (as in compat.py), the approval key, the prompt's regex.
CLIS = {
    "claude": dict(
        crew='kind = "claude"\nargs = ["--permission-mode", "default"]\n'
             f'env = {{ ANTHROPIC_BASE_URL = "http://127.0.0.1:{PORT}", ANTHROPIC_API_KEY = "sk-ant-api03-mock" }}\n',
        seed={".claude.json": json.dumps({"hasCompletedOnboarding": True})},
        # Trust the folder (Down, Enter), take the key (Up, Enter).
        reach=[["Enter"], ["Down"], ["Enter"], ["Up"], ["Enter"]],
        approve=["Enter"],
    ),
    "codex": dict(
        crew='kind = "codex"\nenv = { OPENAI_API_KEY = "sk-mock" }\n',
        seed={".codex/config.toml": 'model = "mock"\nmodel_provider = "mock"\n[model_providers.mock]\nname = "mock"\n'
              f'base_url = "http://127.0.0.1:{PORT}/v1"\nenv_key = "OPENAI_API_KEY"\nwire_api = "responses"\n'},
        # Attach; trust the folder.
        reach=[["Enter"], ["Enter"]],
        pause=3.0,
        approve=["Enter"],
    ),
    "opencode": dict(
        crew='kind = "opencode"\nenv = { ANTHROPIC_API_KEY = "sk-ant-mock" }\n',
        # Its Anthropic provider, at the mock; a shell command asks first.
        seed={".config/opencode/opencode.json": json.dumps({
            "model": "anthropic/claude-sonnet-4-5",
            "provider": {"anthropic": {"options": {"baseURL": f"http://127.0.0.1:{PORT}/v1"}}},
            "permission": {"bash": "ask"}})},
        reach=[],
        approve=["Enter"],
    ),
    "gemini": dict(
        crew='kind = "gemini"\n'
             f'env = {{ GEMINI_API_KEY = "mock-key", GOOGLE_GEMINI_BASE_URL = "http://127.0.0.1:{PORT}" }}\n',
        seed={},
        # Attach; trust the folder, take the API key from the environment (its menu's default), confirm it.
        reach=[["Enter"], ["Enter"], ["Enter"], ["Enter"]],
        pause=4.0,
        approve=["Enter"],
    ),
    "qwen": dict(
        crew='kind = "qwen"\nargs = ["--auth-type", "openai", "--approval-mode", "default"]\n'
             f'env = {{ OPENAI_API_KEY = "sk-mock", OPENAI_BASE_URL = "http://127.0.0.1:{PORT}/v1", '
             'OPENAI_MODEL = "mock" }\n',
        seed={},
        reach=[],
        pause=3.0,
        approve=["Enter"],
    ),
    "pi": dict(
        crew='kind = "pi"\nargs = ["--provider", "mock", "--model", "mock"]\n',
        seed={".pi/agent/models.json": json.dumps({"providers": {"mock": {
            "baseUrl": f"http://127.0.0.1:{PORT}/v1", "api": "openai-completions", "apiKey": "sk-mock",
            "models": [{"id": "mock", "name": "mock", "contextWindow": 100000, "maxTokens": 4000}]}}})},
        reach=[],
        # Pi asks no permission: its command runs at once.
        dialog=False,
        approve=[],
    ),
    "kilo": dict(
        crew='kind = "kilo"\nenv = { ANTHROPIC_API_KEY = "sk-ant-mock" }\n',
        seed={".config/kilo/kilo.jsonc": json.dumps({
            "model": "anthropic/claude-sonnet-4-5",
            "provider": {"anthropic": {"options": {"baseURL": f"http://127.0.0.1:{PORT}/v1"}}},
            "permission": {"bash": "ask"}})},
        reach=[],
        # It offers a background-process tool first; its bash tool is the one that asks.
        mock=("--tool", "bash"),
        approve=["Enter"],
    ),
    "copilot": dict(
        crew='kind = "copilot"\nenv = { COPILOT_OFFLINE = "true", '
             f'COPILOT_PROVIDER_BASE_URL = "http://127.0.0.1:{PORT}/v1", COPILOT_PROVIDER_API_KEY = "sk-mock", '
             'COPILOT_MODEL = "mock" }\n',
        seed={},
        # Attach; trust the folder.
        reach=[["Enter"], ["Enter"]],
        pause=3.0,
        approve=["Enter"],
    ),
}


def status(muster, repo, env):
    """The agent's state and why, as `muster explain` says."""
    out = run(muster, "explain", "agent", cwd=repo, env=env)
    text = out.stdout + out.stderr
    first = text.splitlines()[0] if text else ""
    if first.startswith("agent: ") and " — " in first:
        state, why = first[len("agent: "):].split(" — ", 1)
        return state, why
    return "?", text.strip()[:80]


def sample_until(muster, repo, env, done, seconds, samples):
    end = time.time() + seconds
    while time.time() < end:
        state, why = status(muster, repo, env)
        samples.append((time.time(), state, why))
        if done(state):
            return True
        time.sleep(0.2)
    return False


def phases(log):
    """What the model did, in order: (time, phase) of the turn's own requests (side requests apart)."""
    out, side = [], []
    for line in Path(log).read_text().splitlines():
        d = json.loads(line)
        (side if d["phase"] == "side" else out).append((d["t"], d["phase"], d.get("step")))
    return out, side


def first(samples, after, state):
    return next((t for t, s, _ in samples if t >= after and s == state), None)


def timeline(repo, agent="agent"):
    """Every state muster showed, from its own event log (`.muster/events.jsonl`): (time, state, why) at the
    moment it changed, so lags are exact rather than within a sample."""
    out = []
    path = Path(repo) / ".muster" / "events.jsonl"
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("kind") != "state" or e.get("agent") != agent:
            continue
        text = e.get("text", "")[len(agent) + 2:]
        state, _, why = text.partition(" — ")
        out.append((e["at_ms"] / 1000.0, state, why))
    return sorted(out)


def reached(tl, after, state):
    """When the state became `state` at or after `after` (`after` itself when it already was)."""
    if after is None:
        return None
    before = [s for t, s, _ in tl if t <= after]
    if before and before[-1] == state:
        return after
    return next((t for t, s, _ in tl if t > after and s == state), None)


def time_in(tl, a, b, pred):
    """Seconds between `a` and `b` in a state `pred` holds for, and the reasons shown then."""
    if a is None or b is None or b <= a:
        return 0.0, set()
    total, whys = 0.0, set()
    for i, (t, s, why) in enumerate(tl):
        end = tl[i + 1][0] if i + 1 < len(tl) else b
        lo, hi = max(t, a), min(end, b)
        if hi > lo and pred(s):
            total += hi - lo
            whys.add(why)
    return total, whys


# Whether runs put the agent under guard = "enforce".
ENFORCE = False


class Bench:
    """One run's world: a fresh HOME seeded for the CLI, a repository with the crew (and `extra` crew text), the
    mock model, and muster's workbench in tmux at the CLI's prompt. Everything ends with it."""

    def __init__(self, name, cli, muster, bins, work, extra="", mock_args=()):
        work.mkdir()
        self.cli, self.muster = cli, muster
        self.home, self.repo, self.log = work / "home", work / "repo", work / "mock.jsonl"
        self.home.mkdir()
        for path, text in cli["seed"].items():
            (self.home / path).parent.mkdir(parents=True, exist_ok=True)
            (self.home / path).write_text(text)
        make_repo(self.repo)
        (self.repo / ".muster").mkdir()
        guard = 'guard = "enforce"\n' if ENFORCE else ""
        (self.repo / ".muster/crew.toml").write_text(f'[[agent]]\nname = "agent"\n{cli["crew"]}{guard}{extra}')
        self.mock = subprocess.Popen([sys.executable, str(ROOT / "scripts/mock_model.py"), "--port", str(PORT),
                                      "--log", str(self.log), *cli.get("mock", ()), *mock_args],
                                     stderr=subprocess.DEVNULL)
        self.env = base_env(self.home, bins, {"XDG_STATE_HOME": str(work / "state"),
                                              "XDG_RUNTIME_DIR": str(work / "run")})
        (work / "run").mkdir()
        self.t = Tmux(name, 120, 40, muster, self.env, self.repo)

    def __enter__(self):
        return self

    def reach_prompt(self, samples):
        """Through the CLI's first screens (as in compat.py) to its prompt, idle."""
        self.t.wait(lambda s: "agent" in s, 20)
        time.sleep(3)
        for keys in self.cli["reach"]:
            self.t.keys(*keys)
            time.sleep(self.cli.get("pause", 1.0))
        self.t.keys("C-]")
        return sample_until(self.muster, self.repo, self.env, lambda s: s == "idle", 30, samples)

    def __exit__(self, *_):
        self.t.keys("Q")
        time.sleep(0.5)
        self.t.keys("y")
        time.sleep(3)
        self.t.kill()
        self.mock.terminate()
        end_processes_with_home(self.home)


# Under --enforce the model's command also tries to write into the main checkout (from the worktree, three up).
ESCAPE = "touch ../../../escaped; echo muster-turn > turn.txt && cat turn.txt"


def one_run(kind, cli, muster, bins, work, n):
    escape = (ENFORCE or "--escape" in sys.argv) and "--plain" not in sys.argv
    mock_args = ("--command", ESCAPE) if escape else ()
    with Bench(f"turn-{n}", cli, muster, bins, work / f"{kind}-{n}", "", mock_args) as b:
        t, repo, env, log = b.t, b.repo, b.env, b.log
        samples = []
        if not b.reach_prompt(samples):
            last = samples[-1][1:] if samples else ("?", "")
            print(t.screen(), file=sys.stderr)
            return [("prompt reached", f"no ({last[0]}: {last[1]})")]
        log.write_text("")
        t.keys("s")
        t.text("please make the change")
        sent = time.time()
        t.keys("Enter")
        # Mail while it works: it must wait for the prompt.
        mail_at = time.time()
        run(muster, "mail", "send", "--to", "agent", "muster mail while busy", cwd=repo, env=env)
        samples = []
        dialog = cli.get("dialog", True)
        if dialog:
            sample_until(muster, repo, env, lambda s: s == "waiting", 40, samples)
            t.keys("Enter")
            approved = time.time()
            t.keys(*cli["approve"])
            t.keys("C-]")
        else:
            # No dialog: its command runs at once; "approved" is when the model asked for it.
            sample_until(muster, repo, env, lambda s: s == "busy", 40, samples)
            approved = None
        # To the turn's end: idle, or — where the mail went in before a sample saw the idle between — the mail's
        # own dialog after some busy.
        seen_busy = []

        def ended(s):
            seen_busy.append(s == "busy")
            return s == "idle" or (s == "waiting" and any(seen_busy))
        sample_until(muster, repo, env, ended, 40, samples)
        # The mail's turn after it (Claude's Stop hook hands it over): to its dialog, approved, to its end.
        first_end = time.time()
        if dialog and sample_until(muster, repo, env, lambda s: s == "waiting", 20, samples):
            t.keys("Enter")
            t.keys(*cli["approve"])
            t.keys("C-]")
        elif not dialog:
            sample_until(muster, repo, env, lambda s: s == "busy", 20, samples)
        sample_until(muster, repo, env, lambda s: s == "idle", 40, samples)
        turn, side = phases(log)
        if "--debug" in sys.argv:
            print(t.screen(), file=sys.stderr)
            base = sent
            for t0, st, why in timeline(repo):
                print(f"  {t0 - base:6.2f} {st}: {why}", file=sys.stderr)
            for t0, p_, step in sorted(turn + [(x[0], "side", None) for x in side]):
                print(f"  {t0 - base:6.2f} model {p_} {step or ''}", file=sys.stderr)
        tl = timeline(repo)
        text = next((t0 for t0, p, _ in turn if p == "text"), None)
        call = next((t0 for t0, p, _ in turn if p == "tool_call"), None)
        answer_end = next((t0 for t0, p, s in turn if p == "end" and s == "answer"), None)
        # Exact moments from muster's event log (the samples only drive the run).
        busy_at, waiting_at = reached(tl, sent, "busy"), reached(tl, call or sent, "waiting")
        busy_again = reached(tl, approved, "busy") if approved else None
        idle_at = reached(tl, answer_end or approved or sent, "idle")
        wrong_idle, wrong_whys = time_in(tl, text, answer_end, lambda s: s == "idle")
        # The mail's turn: its text streams from its first request to its tool call.
        mail_text = next((t0 for t0, p, _ in turn if p == "text" and t0 > (answer_end or first_end)), None)
        mail_call = next((t0 for t0, p, _ in turn if p == "tool_call" and t0 > (mail_text or 1e18)), None)
        mail_idle, _ = time_in(tl, mail_text, mail_call, lambda s: s == "idle")
        # The mail's turn began before the operator's had ended: it was typed into a working CLI.
        typed_while_busy = bool(mail_text and answer_end and mail_text < answer_end)

        def lag(a, b):
            return f"{b - a:.2f} s" if a and b else "never"
        # Without a dialog the whole turn is busy: any other state between its first text and its end is wrong.
        wrong_mid, _ = time_in(tl, text, answer_end, lambda s: s != "busy")
        rows = [
            ("prompt → busy", lag(sent, busy_at)),
            ("tool call → waiting", lag(call, waiting_at)) if dialog
            else ("not busy mid-turn (no dialog)", f"{wrong_mid:.2f} s"),
            ("approved → busy", lag(approved, busy_again) if dialog else "n/a (no dialog)"),
            ("turn end → idle", lag(answer_end, idle_at)),
            ("idle shown mid-turn", f"{wrong_idle:.2f} s" + "".join(f" ({w})" for w in sorted(wrong_whys))),
            ("mail's turn", "ran" if mail_text else "never came"),
            ("idle shown in the mail's turn", f"{mail_idle:.2f} s"),
            ("side requests", str(len(side))),
            ("mail typed while busy", "yes" if typed_while_busy else "no"),
        ]
        if escape:
            worktree = repo / ".muster/worktrees/agent"
            rows.append(("its command ran", "yes" if (worktree / "turn.txt").exists() else "no"))
            rows.append(("write into the main checkout", "denied" if not (repo / "escaped").exists() else "MADE"))
        return rows


def spawn_run(kind, cli, muster, bins, work, n):
    """The model's command is `muster spawn`: the CLI, as a lead, starts a demo helper with a task, waits for it to
    be done and reads its result, all in one tool call; then what muster recorded is checked."""
    command = (f"{muster} spawn helper --kind demo --prompt 'check the tests' --wait done --timeout 60 && "
               f"{muster} result get helper")
    with Bench(f"spawn-{n}", cli, muster, bins, work / f"{kind}-spawn-{n}", "", ("--command", command)) as b:
        t, repo, env = b.t, b.repo, b.env
        samples = []
        if not b.reach_prompt(samples):
            return [("prompt reached", "no")]
        t.keys("s")
        t.text("please start a helper")
        t.keys("Enter")
        if cli.get("dialog", True):
            sample_until(muster, repo, env, lambda s: s == "waiting", 40, samples)
            t.keys("Enter")
            t.keys(*cli["approve"])
            t.keys("C-]")
        seen_busy = []
        sample_until(muster, repo, env, lambda s: (seen_busy.append(s == "busy") or (s == "idle" and any(seen_busy))),
                     90, samples)
        status = json.loads(run(muster, "status", "--json", cwd=repo, env=env).stdout or "{}")
        helper = next((a for a in status.get("agents", []) if a.get("spec", {}).get("name") == "helper"), {})
        result = run(muster, "result", "get", "helper", "--json", cwd=repo, env=env).stdout
        screen = t.screen()
        if "--debug" in sys.argv:
            print(screen, file=sys.stderr)
            for t0, st, why in samples:
                print(f"  {st}: {why}", file=sys.stderr)
        return [
            ("helper spawned", "yes" if helper else "no"),
            ("its parent", helper.get("spec", {}).get("parent") or "none"),
            ("its result", (json.loads(result).get("result", {}).get("summary") if result.strip() else "none")),
            # After the lead's turn, not during it: Claude Code's Stop hook hands it over as the next turn.
            ("the completion mail reached the lead", "yes" if "your child helper set its result 1" in screen else "no"),
        ]


def review_run(kind, cli, muster, bins, work, n):
    """Two waves, two CLIs: the implementer (this CLI, wave 1) works a turn; then a Pi reviewer (wave 2) reads
    its diff and asks for a change with `muster review --blocker`; the blocker reaches the implementer as mail and
    it works again; the reviewer, asked by mail to look again, approves the new diff (`agent.new.diff`)."""
    pi = CLIS["pi"]
    both = dict(cli, seed={**cli["seed"], **pi["seed"]})
    command = (f'case "$MUSTER_AGENT" in rev) if [ -e .muster/review/agent.new.diff ]; then {muster} review agent '
               f"--approve; else {muster} review agent --blocker 'add a test for turn.txt'; fi;; "
               "*) echo work >> turn.txt && cat turn.txt;; esac")
    extra = ('wave = 1\nadvance = "idle"\n[[agent]]\nname = "rev"\n' + pi["crew"]
             + 'wave = 2\nreviews = ["agent"]\nadvance = "idle"\nprompt = "review the work of agent"\n')
    with Bench(f"review-{n}", both, muster, bins, work / f"{kind}-review-{n}", extra, ("--command", command)) as b:
        t, repo, env = b.t, b.repo, b.env
        samples = []
        if not b.reach_prompt(samples):
            return [("prompt reached", "no")]
        start = time.time()
        t.keys("s")
        t.text("please make the change")
        t.keys("Enter")
        seen = {}

        def approve_turn():
            if cli.get("dialog", True) and sample_until(muster, repo, env, lambda s: s == "waiting", 90, samples):
                t.keys("Enter")
                t.keys(*cli["approve"])
                t.keys("C-]")

        def watch(what, text, seconds):
            end = time.time() + seconds
            while time.time() < end:
                screen = t.screen()
                if text in screen:
                    seen[what] = time.time() - start
                    if "--debug" in sys.argv:
                        print(f"--- {what} at {seen[what]:.1f} s\n{screen}", file=sys.stderr)
                    return True
                time.sleep(0.2)
            return False
        approve_turn()
        watch("blocker", "review ✗ 1 blocker", 90)
        # The blocker's mail: the implementer's own turn on it (its dialog approved as before).
        approve_turn()
        watch("approved", "review ✓ (rev)", 120)
        if "--debug" in sys.argv:
            print(t.screen(), file=sys.stderr)
        return [
            ("the reviewer's blocker", f"at {seen['blocker']:.1f} s" if "blocker" in seen else "never"),
            ("its approval of the new work", f"at {seen['approved']:.1f} s" if "approved" in seen else "never"),
            ("new diff handed", "yes" if (repo / ".muster/worktrees/rev/.muster/review/agent.new.diff").exists()
             else "no"),
        ]


# A gate on the turn's file: the mock's first command writes `muster-turn` (red), its fix writes `fixed` (green).
GATE = ('[[gate]]\nname = "test"\nattempts = 2\n'
        "run = \"grep -q fixed turn.txt || { echo 'test turn::fixed ... FAILED'; cat turn.txt; exit 1; }\"\n")


def gate_status(muster, repo, env):
    out = run(muster, "gate", "status", "agent", "--json", cwd=repo, env=env)
    try:
        return json.loads(out.stdout or "[]")
    except json.JSONDecodeError:
        return []


def server_log(work):
    """muster's server log of a run (with --debug, on stderr)."""
    for log in Path(work).glob("state/**/muster.log"):
        return log.read_text(errors="replace")
    return ""


def gate_mail_went_in(muster, repo, env):
    """How each of the gate's mails reached the agent (the receipt's detail: typed, hook), oldest first."""
    hows = []
    for i in range(1, 20):
        out = run(muster, "mail", "status", str(i), "--json", cwd=repo, env=env)
        try:
            d = json.loads(out.stdout)
        except json.JSONDecodeError:
            break
        mail = d.get("mail", d)
        mail = mail.get("mail", mail)
        if mail.get("from") != "gate":
            continue
        r = next((r for r in mail.get("receipts", []) if r.get("recipient") == "agent"), {})
        hows.append(f"{r.get('state')}:{r.get('detail')}")
    return hows


def gate_run(kind, cli, muster, bins, work, n):
    """A turn whose gate fails: the failure reaches the CLI as mail (through the arbiter), the model answers it
    with a fix (another shell command, approved in its dialog), and the gate passes on the next turn's end."""
    mock_args = ("--think", "1.5", "--answer", "1")
    with Bench(f"gate-{n}", cli, muster, bins, work / f"gate-{kind}-{n}", GATE, mock_args) as b:
        t, repo, env, log = b.t, b.repo, b.env, b.log
        if not b.reach_prompt([]):
            return [("prompt reached", "no")]
        log.write_text("")
        t.keys("s")
        t.text("please make the change")
        sent = time.time()
        t.keys("Enter")
        samples = []

        def approve_next(seconds):
            if not sample_until(muster, repo, env, lambda s: s == "waiting", seconds, samples):
                return False
            t.keys("Enter")
            t.keys(*cli["approve"])
            t.keys("C-]")
            return True
        first_dialog = approve_next(40)
        sample_until(muster, repo, env, lambda s: s == "idle", 40, samples)
        # The gate runs on the turn's checkpoint and fails; its failure goes in; the fix asks for its command.
        failed = None
        end = time.time() + 30
        while time.time() < end and not failed:
            failed = next((r for r in gate_status(muster, repo, env) if r.get("outcome") == "fail"), None)
            time.sleep(0.2)
        fix_dialog = approve_next(60)
        fixed_at = time.time()
        if "--debug" in sys.argv:
            time.sleep(1.5)
            print(t.screen(), file=sys.stderr)
        sample_until(muster, repo, env, lambda s: s == "idle", 60, samples)
        if "--debug" in sys.argv:
            print(t.screen(), file=sys.stderr)
        green = run(muster, "wait", "agent", "--until", "green", "--timeout", "60", cwd=repo, env=env).returncode == 0
        runs = gate_status(muster, repo, env)
        fix_at = next((d["t"] for d in map(json.loads, log.read_text().splitlines()) if d["phase"] == "fix"), None)
        fail_end = (failed["started_ms"] + failed["took_ms"]) / 1000 if failed else None
        # The failure must never go into a dialog: the fix's request comes while no dialog shows.
        in_dialog = bool(fix_at) and any(abs(t0 - fix_at) < 0.2 and st == "waiting" for t0, st, _ in samples)
        if "--debug" in sys.argv:
            last = None
            for t0, st, why in samples:
                if (st, why) != last:
                    print(f"  {t0 - sent:6.2f} {st}: {why}", file=sys.stderr)
                    last = (st, why)
            for r in runs:
                print(f"  gate #{r['id']} {r['outcome']} {r['why']} at {r['started_ms'] / 1000 - sent:.2f}",
                      file=sys.stderr)
            if fix_at:
                print(f"  {fix_at - sent:6.2f} model fix", file=sys.stderr)
            print(server_log(repo.parent)[-3000:], file=sys.stderr)
        return [
            ("first dialog", "approved" if first_dialog else "never"),
            ("gate", "failed" if failed else "never failed"),
            ("failure → fix request", f"{fix_at - fail_end:.2f} s" if fix_at and fail_end else "never"),
            ("fix's dialog", "approved" if fix_dialog else "never"),
            ("green", "yes" if green else "no"),
            ("runs", " ".join(f"{r['outcome']}" for r in reversed(runs))),
            ("failure typed into a dialog", "yes" if in_dialog else "no"),
            ("failure went in", " ".join(gate_mail_went_in(muster, repo, env)) or "?"),
        ]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", default=str(Path.home() / ".cache/muster-compat"))
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--cli", action="append", choices=sorted(CLIS), help="only these (default: all)")
    p.add_argument("--debug", action="store_true", help="each run's states and the model's phases, on stderr")
    p.add_argument("--gate", action="store_true",
                   help="a turn whose gate fails, the failure sent back, the model's fix, the gate green")
    p.add_argument("--enforce", action="store_true",
                   help='the agent under guard = "enforce" (Landlock): the same turn must work whole, and the '
                        "model's command's write into the main checkout is denied")
    p.add_argument("--plain", action="store_true", help="with --enforce: the model's usual command, no escape")
    p.add_argument("--review", action="store_true",
                   help="two waves: this CLI implements, a Pi reviewer asks for a change, then approves the new work")
    p.add_argument("--spawn", action="store_true",
                   help="the model's command is `muster spawn` of a demo helper, waited for until done")
    p.add_argument("--escape", action="store_true",
                   help="the model's command tries that write without --enforce (the control: it is made)")
    a = p.parse_args()
    global ENFORCE
    ENFORCE = a.enforce
    muster = str(ROOT / "target/debug/muster")
    bins = [str(Path(a.cache) / "npm/bin"), str(Path(a.cache) / "py/bin")]
    with tempfile.TemporaryDirectory(prefix="muster-turns-") as tmp:
        for kind in a.cli or sorted(CLIS):
            for n in range(a.runs):
                how = gate_run if a.gate else spawn_run if a.spawn else review_run if a.review else one_run
                rows = how(kind, CLIS[kind], muster, bins, Path(tmp), n)
                print(f"{kind}{' gate' if a.gate else ' spawn' if a.spawn else ' review' if a.review else ''} run {n + 1}: " + " · ".join(f"{k} {v}" for k, v in rows), flush=True)


if __name__ == "__main__":
    main()
