#!/usr/bin/env python3
"""The compatibility suite: each real agent CLI inside muster, in tmux, as a new user would run it.

Not in CI (it downloads the CLIs). `scripts/compat.sh` installs the pinned versions into a cache folder and runs
this; `--write` puts the table into COMPAT.md. For every CLI, with a fresh HOME and no network:

  first screen   the well shows what the same CLI shows under plain tmux at the well's size (text similarity)
  state          the state muster shows within 5 s of the first screen, and the rule or hook that decided it
  at rest        state changes over 30 s with nobody touching anything (0 is right)
  first key      the CLI's documented first key, typed through muster (attached), changes its screen as expected
  steer          `s`, text, Enter: the text reaches the CLI's prompt (where it has one offline)
  pause          `p` freezes every process of the agent (cgroup freezer or SIGSTOP), `p` again thaws them
  quit           `Q`, `y` (stop the crew; `q` only detaches): no process of the agent is left
"""

import argparse
import difflib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORD = None
WIDTH, HEIGHT = 120, 40
# One agent: header, one roster row, the well's bar and the status line leave 36 rows for the well.
WELL_ROWS = HEIGHT - 4

# kind, label, extra environment, files to seed in HOME, expected first state, first key (tmux names) and what
# the screen shows after it, steer text and what shows after it (None: no prompt offline).
CLIS = [
    dict(kind="claude", label="claude (fresh HOME)", env={}, seed={}, expect="exited",
         key=None, steer=None),
    dict(kind="claude", label="claude (onboarded)", env={"ANTHROPIC_API_KEY": "sk-ant-api03-compat"},
         seed={".claude.json": json.dumps({"hasCompletedOnboarding": True})}, expect="waiting",
         key=(["Down"], r"❯ Yes, I trust this folder"),
         # Trust, accept the key: the prompt.
         reach_prompt=[["Enter"], ["Up"], ["Enter"]], prompt=r"(?m)^❯\s*$",
         steer=("say hi from muster", r"❯\s*say hi from muster"), ctrl_c="clear"),
    dict(kind="codex", label="codex", env={}, seed={}, expect="waiting",
         key=(["Down"], r"> 2\. Sign in with Device Code"), steer=None),
    dict(kind="gemini", label="gemini", env={}, seed={}, expect="waiting",
         key=(["Down"], r"● 2\. Trust parent folder"), steer=None, ctrl_c=True),
    dict(kind="opencode", label="opencode", env={}, seed={}, expect="idle",
         key=(["h", "i"], r"┃\s+hi"), clear=["C-u"],
         steer=("hello from muster", r"hello from muster"), ctrl_c="clear"),
    dict(kind="aider", label="aider", env={}, seed={}, expect="waiting",
         key=(["Enter"], r"Added \.aider\* to \.gitignore"), steer=None),
]


def run(*args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


class Tmux:
    def __init__(self, name, width, height, command, env, cwd):
        self.socket = f"muster-compat-{os.getpid()}-{name}"
        envs = " ".join(f"{k}={shq(v)}" for k, v in env.items())
        script = f"cd {shq(str(cwd))} && env -i {envs} {command}; echo EXITED $?; sleep 600"
        run("tmux", "-L", self.socket, "new-session", "-d", "-x", str(width), "-y", str(height), "sh", "-c", script)

    def keys(self, *keys):
        run("tmux", "-L", self.socket, "send-keys", "-t", "0", *keys)

    def text(self, text):
        run("tmux", "-L", self.socket, "send-keys", "-t", "0", "-l", text)

    def screen(self):
        return run("tmux", "-L", self.socket, "capture-pane", "-p", "-t", "0").stdout

    def wait(self, pred, seconds):
        end = time.time() + seconds
        while time.time() < end:
            s = self.screen()
            if pred(s):
                return s
            time.sleep(0.1)
        return None

    def kill(self):
        run("tmux", "-L", self.socket, "kill-server")


def end_processes_with_home(home):
    """End what a CLI left running under plain tmux (Codex's app-server daemons outlive its session): every
    process whose HOME is the run's own fresh home. Under muster they are in the agent's tree and end with it."""
    want = f"HOME={home}".encode()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        found = False
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if want in f.read().split(b"\0"):
                        os.kill(int(pid), sig)
                        found = True
            except (OSError, ProcessLookupError):
                pass
        if not found:
            return
        time.sleep(0.5)


def shq(s):
    return "'" + s.replace("'", "'\\''") + "'"


def settled_screen(t, seconds=30, quiet=4.0, part=lambda s: s):
    """The screen once it has stopped changing for `quiet` seconds (CLIs animate their first frames)."""
    end = time.time() + seconds
    last, since = None, time.time()
    while time.time() < end:
        s = t.screen()
        if s != last:
            last, since = s, time.time()
        elif time.time() - since >= quiet and part(s).strip():
            break
        time.sleep(0.2)
    return last or ""


def strip(screen):
    return "\n".join(l.rstrip() for l in screen.splitlines()).strip("\n")


def well(screen):
    """The agent's terminal in muster's screen: the rows below the well's bar, without the status line."""
    lines = screen.splitlines()
    return "\n".join(lines[3:HEIGHT - 1])


def similarity(a, b):
    """The share of lines the two screens have in common, in order. By lines, and without difflib's "autojunk"
    (which, on text over 200 characters, ignores characters as common as a box-drawing rule and once turned a
    screen equal but for one line into 0.28)."""
    return difflib.SequenceMatcher(None, strip(a).splitlines(), strip(b).splitlines(), autojunk=False).ratio()


def make_repo(path):
    path.mkdir(parents=True)
    run("git", "init", "-q", "-b", "main", cwd=path)
    (path / "README.md").write_text("a project\n")
    run("git", "add", ".", cwd=path)
    run("git", "-c", "user.name=compat", "-c", "user.email=compat@example.com", "commit", "-qm", "init", cwd=path)


def base_env(home, bins, extra):
    env = {"PATH": ":".join(bins + ["/usr/local/bin", "/usr/bin", "/bin"]), "HOME": str(home),
           "TERM": "xterm-256color", "COLORTERM": "truecolor", "LANG": "C.UTF-8"}
    env.update(extra)
    return env


def seed_home(home, seed):
    home.mkdir(parents=True, exist_ok=True)
    for name, text in seed.items():
        (home / name).write_text(text)


def explain(muster, repo, env):
    out = run(muster, "explain", "agent", cwd=repo, env=env)
    text = out.stdout + out.stderr
    m = re.match(r"agent: (\w+) — (.*)", text)
    pids = re.search(r"processes: \[([\d, ]*)\]", text)
    return (m.group(1) if m else "?", m.group(2) if m else text.strip(),
            [int(p) for p in pids.group(1).split(",") if p.strip()] if pids else [])


def frozen(pid):
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    if re.search(r"State:\s+T", status):
        return True
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrl, path = line.split(":", 2)
        for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
            ev = Path(base + path) / "cgroup.events"
            if ctrl == "" and ev.exists() and "frozen 1" in ev.read_text():
                return True
            fz = Path("/sys/fs/cgroup/freezer" + path) / "freezer.state"
            if "freezer" in ctrl and fz.exists() and fz.read_text().strip() == "FROZEN":
                return True
    return False


def marked_processes():
    """Processes that carry an agent's mark (MUSTER_AGENT_ID) in their environment."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if b"MUSTER_AGENT_ID=" in (p / "environ").read_bytes():
                    status = (p / "status").read_text()
                    if not re.search(r"State:\s+Z", status):
                        out.append(int(p.name))
            except OSError:
                pass
    return out


def check(cli, muster, bins, work):
    r = {"cli": cli["label"]}
    name = cli["label"].split()[0] + ("-onb" if "onboarded" in cli["label"] else "")
    # Plain tmux first, at the well's size, in a folder named like the agent's worktree.
    plain_home = work / f"home-plain-{name}"
    seed_home(plain_home, cli["seed"])
    plain_repo = work / f"plain-{name}" / "agent"
    make_repo(plain_repo)
    plain = Tmux(f"plain-{name}", WIDTH, WELL_ROWS, cli["kind"], base_env(plain_home, bins, cli["env"]), plain_repo)
    time.sleep(1)
    plain_screen = settled_screen(plain)
    plain.kill()
    end_processes_with_home(plain_home)

    home = work / f"home-{name}"
    seed_home(home, cli["seed"])
    repo = work / f"repo-{name}"
    make_repo(repo)
    (repo / ".muster").mkdir()
    (repo / ".muster/crew.toml").write_text(f'[[agent]]\nname = "agent"\nkind = "{cli["kind"]}"\n')
    env = base_env(home, bins, cli["env"])
    env["TMPDIR"] = str(work)
    cmd_env = dict(env)
    t = Tmux(f"muster-{name}", WIDTH, HEIGHT, shq(muster), env, repo)
    try:
        started = time.time()
        screen = settled_screen(t, part=well)
        r["first screen"] = f"{similarity(well(screen), plain_screen):.2f}"
        if RECORD:
            # Recorded screens become fixtures of tests/screen_rules.rs (with an expected state to add by hand).
            Path(RECORD).mkdir(parents=True, exist_ok=True)
            (Path(RECORD) / f"{name}-well.txt").write_text(strip(well(screen)) + "\n")
        # The state within 5 s of the first screen.
        state, why, pids = "?", "", []
        end = time.time() + 5
        while time.time() < end:
            state, why, pids = explain(muster, repo, cmd_env)
            if state == cli["expect"]:
                break
            time.sleep(0.2)
        if cli["expect"] == "exited" and state != "exited":
            roster = screen.splitlines()[1] if len(screen.splitlines()) > 1 else ""
            state = "exited" if "exited" in roster else state
        r["state"] = f"{'✔' if state == cli['expect'] else '✗'} {state} ({why})" if why else f"{state}"
        r["_elapsed"] = time.time() - started
        if cli["expect"] == "exited":
            for k in ("at rest", "first key", "steer", "ctrl-c", "pause"):
                r[k] = "n/a (exits)"
        else:
            # At rest: count state changes over 30 s.
            seen, changes, end = state, 0, time.time() + 30
            while time.time() < end:
                s, _, pids_now = explain(muster, repo, cmd_env)
                pids = pids_now or pids
                if s != seen and s != "?":
                    changes, seen = changes + 1, s
                time.sleep(0.5)
            r["at rest"] = f"{'✔' if changes == 0 else '✗'} {changes} change(s)"
            # Pause: every process frozen, then thawed.
            t.keys("p")
            time.sleep(1)
            _, _, pids = explain(muster, repo, cmd_env)
            states = [frozen(p) for p in pids]
            t.keys("p")
            time.sleep(1)
            thawed = [frozen(p) for p in pids]
            ok = pids and all(s for s in states if s is not None) and not any(thawed)
            r["pause"] = f"{'✔' if ok else '✗'} {sum(1 for s in states if s)}/{len(pids)} frozen, thawed"
            # The first key, attached.
            if cli["key"]:
                keys, want = cli["key"]
                t.keys("Enter")
                time.sleep(0.3)
                for k in keys:
                    t.keys(k)
                    time.sleep(0.1)
                got = t.wait(lambda s: re.search(want, well(s)), 5)
                r["first key"] = f"{'✔' if got else '✗'} {' '.join(keys)}"
                for k in cli.get("clear", []):
                    t.keys(k)
                t.keys("C-]")
                time.sleep(0.3)
            else:
                r["first key"] = "-"
            # Steer at the prompt, where there is one offline.
            if cli["steer"]:
                if cli.get("reach_prompt"):
                    t.keys("Enter")
                    time.sleep(0.3)
                    for ks in cli["reach_prompt"]:
                        t.keys(*ks)
                        time.sleep(1.5)
                    t.keys("C-]")
                    # Offline, Claude Code takes several seconds to show its prompt after the key question.
                    t.wait(lambda s: re.search(cli["prompt"], well(s)), 30)
                text, want = cli["steer"]
                t.keys("s")
                time.sleep(0.3)
                t.text(text)
                t.keys("Enter")
                time.sleep(0.3)
                # A confirmation appears only if the agent shows a dialog.
                if "showing a dialog" in t.screen():
                    t.keys("Escape")
                    r["steer"] = "✗ agent showed a dialog"
                else:
                    got = t.wait(lambda s: re.search(want, well(s)), 10)
                    r["steer"] = f"{'✔' if got else '✗'} submitted"
            else:
                r["steer"] = "n/a (no prompt offline)"
            # Ctrl-C, which these CLIs read in the kitty keyboard protocol they turned on inside muster: the
            # first press asks for a second.
            if cli.get("ctrl_c"):
                t.keys("Enter")
                time.sleep(0.3)
                marker = "zqx7w"
                if cli["ctrl_c"] == "clear":
                    # At a prompt, Ctrl-C clears what was typed.
                    t.text(marker)
                    t.wait(lambda s: marker in well(s), 5)
                t.keys("C-c")
                # As the CLI documents it: it clears the prompt, asks for a second press, interrupts the turn,
                # or exits.
                reacted = lambda s: re.search(r"(?i)again to exit|interrupted|exited \(", s) or (
                    cli["ctrl_c"] == "clear" and marker not in well(s))
                got = t.wait(reacted, 5)
                m = re.search(r"(?i)again to exit|interrupted|exited \(", got or "")
                what = m.group(0).lower().rstrip(" (") if m else "cleared the prompt"
                r["ctrl-c"] = f"✔ {what}" if got else "✗ no reaction"
                t.keys("C-]")
                time.sleep(1.5)
            else:
                r["ctrl-c"] = "-"
        # Stop the crew (`q` would only detach from the server): nothing of the agent left.
        before = set(marked_processes())
        t.keys("Q")
        time.sleep(0.5)
        t.keys("y")
        t.wait(lambda s: "EXITED" in s, 20)
        end = time.time() + 10
        left = before
        while time.time() < end:
            left = before & set(marked_processes())
            if not left:
                break
            time.sleep(0.2)
        r["quit"] = "✔ none left" if not left else f"✗ {len(left)} left: {sorted(left)}"
    finally:
        t.kill()
    return r


def versions(bins):
    out = {}
    for cmd in ("claude", "codex", "gemini", "opencode", "aider"):
        path = shutil.which(cmd, path=":".join(bins))
        if path:
            v = run(path, "--version", env={"PATH": ":".join(bins + ["/usr/bin", "/bin"]), "HOME": "/tmp"})
            m = re.search(r"\d+\.\d+\.\d+", v.stdout + v.stderr)
            out[cmd] = m.group(0) if m else "?"
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                                                    "muster-compat"))
    ap.add_argument("--muster", default=str(ROOT / "target/debug/muster"))
    ap.add_argument("--only", help="run only CLIs whose label contains this")
    ap.add_argument("--write", action="store_true", help="write the table into COMPAT.md")
    ap.add_argument("--record", help="save each CLI's first screen in muster's well into this folder")
    args = ap.parse_args()
    global RECORD
    RECORD = args.record
    bins = [os.path.join(args.cache, "npm/bin"), os.path.join(args.cache, "py/bin")]
    # Not in the temp dir: Gemini CLI refuses settings below a folder others may write to, and the agents' HOMEs
    # (where muster keeps Gemini's hook settings) are in here.
    os.makedirs(args.cache, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=args.cache))
    rows = []
    for cli in CLIS:
        if args.only and args.only not in cli["label"]:
            continue
        print(f"… {cli['label']}", file=sys.stderr)
        rows.append(check(cli, args.muster, bins, work))
    cols = ["cli", "first screen", "state", "at rest", "first key", "steer", "ctrl-c", "pause", "quit"]
    table = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        table.append("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    ver = versions(bins)
    text = "\n".join(table)
    print(text)
    print("versions: " + ", ".join(f"{k} {v}" for k, v in ver.items()))
    if args.write:
        body = (ROOT / "COMPAT.md").read_text() if (ROOT / "COMPAT.md").exists() else ""
        head, _, rest = body.partition("<!-- table -->")
        # What follows the table (notes of runs by hand) stays.
        tail = rest.partition("<!-- /table -->")[2] if "<!-- /table -->" in rest else ""
        stamp = time.strftime("%Y-%m-%d")
        (ROOT / "COMPAT.md").write_text(
            head + "<!-- table -->\n" + f"Run on {stamp} (`scripts/compat.sh`), {WIDTH}x{HEIGHT}, fresh HOME, offline. "
            + "Versions: " + ", ".join(f"{k} {v}" for k, v in ver.items()) + ".\n\n" + text + "\n<!-- /table -->"
            + tail)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
