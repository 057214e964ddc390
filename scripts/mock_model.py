#!/usr/bin/env python3
"""A small stand-in for the model APIs agent CLIs talk to, on 127.0.0.1, so the CLIs do whole turns offline.

Not in CI (the CLIs it serves are downloaded). It speaks, streaming:
  Anthropic Messages              POST /v1/messages                 (Claude Code: ANTHROPIC_BASE_URL)
  OpenAI Chat Completions         POST /v1/chat/completions         (opencode, aider, most OpenAI-compatible CLIs)
  OpenAI Responses                POST /v1/responses                (Codex)
  Gemini streamGenerateContent    POST /v1beta/models/M:streamGenerateContent?alt=sse  (Gemini CLI)

Every turn is the same script, so a suite can time what the CLI shows against what the model did:
  1. a request whose last message is the operator's prompt, with tools: text streams for --think seconds, then
     a call of the CLI's own shell tool (the first tool whose parameters take a command) running --command;
  2. the request that carries that tool's result: text streams for --answer seconds, and the turn ends.
A turn whose prompt is a muster gate's failure (its mail, "The gate `test` failed …") runs --fix-command instead.
A request without tools (a title, a summary, a quota check) gets a short answer at once: the CLIs send those
beside a turn, and a suite must see them too. Every phase is one JSON line in --log: its time, the API, the
phase (text, tool_call, answer, side, end), so lags can be measured against it.

Usage: scripts/mock_model.py --port 8765 --log /tmp/mock.jsonl [--think 3] [--answer 2] [--command 'echo hi']
"""

import argparse
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
LOG_LOCK = threading.Lock()


def log(api, phase, **extra):
    line = json.dumps(dict(t=time.time(), api=api, phase=phase, **extra))
    with LOG_LOCK:
        with open(ARGS.log, "a") as f:
            f.write(line + "\n")


def words(seconds, text="I am looking at the repository to see what it holds and what to change. "):
    """The text of a stream that lasts `seconds`: a word every 100 ms."""
    parts = (text * 20).split(" ")
    n = max(1, int(seconds * 10))
    return [p + " " for p in parts[:n]]


def shell_tool(tools, name_of, params_of):
    """The CLI's own tool that runs a command: the one --tool names if it offers it, else the first whose
    parameters take one (`command`/`cmd`)."""
    tools = list(tools or [])
    if ARGS.tool:
        tools.sort(key=lambda t: name_of(t) != ARGS.tool)
    for t in tools:
        props = (params_of(t) or {}).get("properties", {}) or {}
        for key in ("command", "cmd"):
            if key in props:
                return name_of(t), key, props[key].get("type"), props
    return None


def call_args(tool, command=None):
    """The arguments of a call of the shell tool: the command, and where the tool lets the model ask to run
    outside the sandbox (Codex's `sandbox_permissions`), that, so the CLI asks the operator."""
    _, key, kind, props = tool
    args = {key: command_value(kind, command)}
    if "sandbox_permissions" in props:
        args.update(sandbox_permissions="require_escalated", justification="The mock model asks to write turn.txt.")
    if "description" in props:
        args["description"] = "Run the command"
    return args


def command_value(kind, command=None):
    # Codex's shell takes argv; the rest a string.
    command = command or ARGS.command
    return ["bash", "-lc", command] if kind == "array" else command


# A muster gate's failure, typed into the CLI as mail (`protocol::gate::steer_text`): the turn it starts fixes.
GATE_FAILED = "The gate `"


def asks_a_fix(messages):
    """Whether the turn's request carries a gate's failure (its last message, in any API's shape)."""
    return bool(messages) and GATE_FAILED in json.dumps(messages[-1])


def fill(schema):
    """A value that a JSON schema accepts (its first enum value, empty strings and lists, zeros): for requests
    that ask for structured output (Gemini's model router, titles)."""
    if not isinstance(schema, dict):
        return "mock"
    if schema.get("enum"):
        return schema["enum"][0]
    kind = str(schema.get("type", "object")).lower()
    if kind == "object":
        return {k: fill(v) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return False
    return "mock"


def has_tool_result(messages):
    """Whether the conversation's last turn is a tool's result (the second request of a turn)."""
    if not messages:
        return False
    last = messages[-1]
    if isinstance(last, dict):
        if last.get("role") == "tool" or last.get("type") in ("function_call_output", "custom_tool_call_output"):
            return True
        content = last.get("content")
        if isinstance(content, list):
            return any(isinstance(c, dict) and c.get("type") in ("tool_result", "function_call_output") for c in content)
        parts = last.get("parts")
        if isinstance(parts, list):
            return any(isinstance(p, dict) and "functionResponse" in p for p in parts)
    return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def body(self):
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            # Node's fetch streams request bodies in chunks, without a length.
            raw = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                raw += self.rfile.read(size)
                self.rfile.readline()
        else:
            n = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(n) if n else b"{}"
        if (self.headers.get("content-encoding") or "").lower() == "gzip":
            import gzip
            raw = gzip.decompress(raw)
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return {}

    def start_sse(self):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True

    def sse(self, data, event=None):
        out = ""
        if event:
            out += f"event: {event}\n"
        out += f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"
        self.wfile.write(out.encode())
        self.wfile.flush()

    def json_reply(self, obj, code=200):
        raw = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        if ARGS.verbose:
            print("GET", self.path, dict(self.headers), file=sys.stderr, flush=True)
        # Model lists and health checks: a model, any name.
        if "models" in self.path:
            self.json_reply({"object": "list", "data": [{"id": "mock", "object": "model"}], "models": [
                {"name": "models/gemini-2.5-pro", "supportedGenerationMethods": ["generateContent"]}]})
        else:
            self.json_reply({})

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_POST(self):
        req = self.body()
        path = self.path.split("?")[0]
        if ARGS.verbose:
            print(self.path, dict(self.headers), json.dumps(req)[:300], file=sys.stderr, flush=True)
            with open(ARGS.log + ".last-request.json", "w") as f:
                json.dump(req, f)
        try:
            if path.endswith("/messages/count_tokens"):
                return self.json_reply({"input_tokens": 10})
            if path.endswith("/messages"):
                return self.anthropic(req)
            if path.endswith("/chat/completions"):
                return self.chat(req)
            if path.endswith("/responses"):
                return self.openai_responses(req)
            if ":streamGenerateContent" in path or ":generateContent" in path:
                return self.gemini(req, stream=":streamGenerateContent" in path)
            if ":countTokens" in path:
                return self.json_reply({"totalTokens": 10})
            self.json_reply({"error": {"message": f"mock: no {path}"}}, 404)
        except (BrokenPipeError, ConnectionResetError):
            log("-", "client_gone", path=path)

    # Which step of the turn a request is, and what to stream.
    def plan(self, api, tools, messages, tool):
        self.command = None
        if not tools:
            log(api, "side")
            return "side", words(0.1, "Done. ")
        if has_tool_result(messages):
            return "answer", words(ARGS.answer, "The command ran and the work is done as asked. ")
        if asks_a_fix(messages):
            # A gate failed on the last turn's work: this turn runs --fix-command.
            self.command = ARGS.fix_command
            log(api, "fix")
        return ("call" if tool else "answer"), words(ARGS.think)

    def anthropic(self, req):
        tools = req.get("tools") or []
        tool = shell_tool(tools, lambda t: t.get("name"), lambda t: t.get("input_schema"))
        step, text = self.plan("anthropic", tools, req.get("messages"), tool)
        mid = "msg_" + uuid.uuid4().hex[:12]
        if not req.get("stream"):
            log("anthropic", "end", step=step, stream=False)
            return self.json_reply({"id": mid, "type": "message", "role": "assistant", "model": req.get("model", "mock"),
                                    "content": [{"type": "text", "text": "".join(text)}], "stop_reason": "end_turn",
                                    "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 10}})
        self.start_sse()
        self.sse({"type": "message_start", "message": {"id": mid, "type": "message", "role": "assistant",
                  "model": req.get("model", "mock"), "content": [], "stop_reason": None, "stop_sequence": None,
                  "usage": {"input_tokens": 10, "output_tokens": 1}}}, "message_start")
        self.sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                 "content_block_start")
        if step != "side":
            log("anthropic", "text" if step == "call" else "answer")
        for w in text:
            self.sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}},
                     "content_block_delta")
            if step != "side":
                time.sleep(0.1)
        self.sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
        stop = "end_turn"
        if step == "call":
            name = tool[0]
            log("anthropic", "tool_call", tool=name)
            self.sse({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use",
                      "id": "toolu_" + uuid.uuid4().hex[:12], "name": name, "input": {}}}, "content_block_start")
            self.sse({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta",
                      "partial_json": json.dumps(call_args(tool, self.command))}},
                     "content_block_delta")
            self.sse({"type": "content_block_stop", "index": 1}, "content_block_stop")
            stop = "tool_use"
        self.sse({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                  "usage": {"output_tokens": 20}}, "message_delta")
        self.sse({"type": "message_stop"}, "message_stop")
        log("anthropic", "end", step=step)

    def chat(self, req):
        tools = req.get("tools") or []
        tool = shell_tool(tools, lambda t: t.get("function", {}).get("name"),
                          lambda t: t.get("function", {}).get("parameters"))
        step, text = self.plan("chat", tools, req.get("messages"), tool)
        cid = "chatcmpl-" + uuid.uuid4().hex[:12]

        def chunk(delta, finish=None):
            return {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": "mock",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        if not req.get("stream"):
            log("chat", "end", step=step, stream=False)
            return self.json_reply({"id": cid, "object": "chat.completion", "created": int(time.time()), "model": "mock",
                                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(text)},
                                                 "finish_reason": "stop"}],
                                    "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}})
        self.start_sse()
        if step != "side":
            log("chat", "text" if step == "call" else "answer")
        self.sse(chunk({"role": "assistant", "content": ""}))
        for w in text:
            self.sse(chunk({"content": w}))
            if step != "side":
                time.sleep(0.1)
        finish = "stop"
        if step == "call":
            name = tool[0]
            log("chat", "tool_call", tool=name)
            self.sse(chunk({"tool_calls": [{"index": 0, "id": "call_" + uuid.uuid4().hex[:12], "type": "function",
                                            "function": {"name": name,
                                                         "arguments": json.dumps(call_args(tool, self.command))}}]}))
            finish = "tool_calls"
        self.sse(chunk({}, finish))
        self.sse({**chunk({}), "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}})
        self.sse("[DONE]")
        log("chat", "end", step=step)

    def openai_responses(self, req):
        tools = req.get("tools") or []
        tool = shell_tool(tools, lambda t: t.get("name"), lambda t: t.get("parameters"))
        items = req.get("input") if isinstance(req.get("input"), list) else []
        step, text = self.plan("responses", tools, items, tool)
        rid = "resp_" + uuid.uuid4().hex[:12]
        self.start_sse()
        seq = iter(range(1_000_000))
        base = {"id": rid, "object": "response", "created_at": int(time.time()), "model": "mock", "output": []}
        self.sse({"type": "response.created", "sequence_number": next(seq), "response": {**base, "status": "in_progress"}},
                 "response.created")
        mid = "msg_" + uuid.uuid4().hex[:12]
        self.sse({"type": "response.output_item.added", "sequence_number": next(seq), "output_index": 0,
                  "item": {"id": mid, "type": "message", "role": "assistant", "status": "in_progress", "content": []}},
                 "response.output_item.added")
        if step != "side":
            log("responses", "text" if step == "call" else "answer")
        for w in text:
            self.sse({"type": "response.output_text.delta", "sequence_number": next(seq), "item_id": mid,
                      "output_index": 0, "content_index": 0, "delta": w}, "response.output_text.delta")
            if step != "side":
                time.sleep(0.1)
        message = {"id": mid, "type": "message", "role": "assistant", "status": "completed",
                   "content": [{"type": "output_text", "text": "".join(text), "annotations": []}]}
        self.sse({"type": "response.output_item.done", "sequence_number": next(seq), "output_index": 0, "item": message},
                 "response.output_item.done")
        output = [message]
        if step == "call":
            name = tool[0]
            log("responses", "tool_call", tool=name)
            call = {"id": "fc_" + uuid.uuid4().hex[:12], "type": "function_call", "status": "completed",
                    "call_id": "call_" + uuid.uuid4().hex[:12], "name": name,
                    "arguments": json.dumps(call_args(tool, self.command))}
            self.sse({"type": "response.output_item.added", "sequence_number": next(seq), "output_index": 1,
                      "item": {**call, "status": "in_progress"}}, "response.output_item.added")
            self.sse({"type": "response.output_item.done", "sequence_number": next(seq), "output_index": 1, "item": call},
                     "response.output_item.done")
            output.append(call)
        self.sse({"type": "response.completed", "sequence_number": next(seq),
                  "response": {**base, "status": "completed", "output": output,
                               "usage": {"input_tokens": 10, "output_tokens": 20, "total_tokens": 30,
                                         "input_tokens_details": {"cached_tokens": 0},
                                         "output_tokens_details": {"reasoning_tokens": 0}}}},
                 "response.completed")
        log("responses", "end", step=step)

    def gemini(self, req, stream):
        decls = [d for t in req.get("tools") or [] for d in t.get("functionDeclarations", []) or []]
        tool = shell_tool(decls, lambda d: d.get("name"),
                          lambda d: d.get("parameters") or d.get("parametersJsonSchema"))
        step, text = self.plan("gemini", decls, req.get("contents"), tool)
        usage = {"promptTokenCount": 10, "candidatesTokenCount": 10, "totalTokenCount": 20}

        def candidate(parts, finish=None):
            c = {"content": {"role": "model", "parts": parts}, "index": 0}
            if finish:
                c["finishReason"] = finish
            return {"candidates": [c], "usageMetadata": usage, "modelVersion": "gemini-2.5-pro"}
        config = req.get("generationConfig") or {}
        if "json" in str(config.get("responseMimeType", "")):
            # Structured output (the model router): a value of the schema it asks for.
            schema = config.get("responseJsonSchema") or config.get("responseSchema")
            text = [json.dumps(fill(schema))]
        if not stream:
            log("gemini", "end", step=step, stream=False)
            return self.json_reply(candidate([{"text": "".join(text)}], "STOP"))
        self.start_sse()
        if step != "side":
            log("gemini", "text" if step == "call" else "answer")
        for w in text:
            self.sse(candidate([{"text": w}]))
            if step != "side":
                time.sleep(0.1)
        if step == "call":
            name = tool[0]
            log("gemini", "tool_call", tool=name)
            self.sse(candidate([{"functionCall": {"name": name, "args": call_args(tool, self.command)}}], "STOP"))
        else:
            self.sse(candidate([{"text": ""}], "STOP"))
        log("gemini", "end", step=step)


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--log", default="/tmp/mock-model.jsonl")
    p.add_argument("--think", type=float, default=3.0, help="seconds of text before the tool call")
    p.add_argument("--answer", type=float, default=2.0, help="seconds of text after the tool's result")
    p.add_argument("--command", default="echo muster-turn > turn.txt && cat turn.txt")
    p.add_argument("--fix-command", default="echo fixed > turn.txt && cat turn.txt",
                   help="what a turn started by a muster gate's failure runs")
    p.add_argument("--tool", help="the tool to call when the CLI offers it (else the first that takes a command)")
    p.add_argument("--verbose", action="store_true", help="every request's path, headers and start, on stderr")
    ARGS = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    print(f"mock model on http://127.0.0.1:{ARGS.port} (log {ARGS.log})", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
