"""Records Langflow 1.13's chat-history behaviour for Sandflow's memory
tests: the shared flow `legacy/memorychatbotnollm.json` (Chat Input and
Chat Output store each turn, Message History reads the session back, Type
Convert turns its DataFrame into the prompt's context) run turn after turn
in one session by Langflow's own graph engine on Langflow's own database,
with tweaks that exercise Message History's parameters. The result is
written to `tests/langflow/memory-chatbot.json`, which
`runtime-host/tests/memory.rs` replays through Sandflow.

    python3 -m venv /tmp/lf && /tmp/lf/bin/pip install uv \
      && /tmp/lf/bin/uv pip install --python /tmp/lf/bin/python langflow==1.13.0
    /tmp/lf/bin/python scripts/langflow/record_memory.py

Two things about Langflow itself that the recording pins down:

* Langflow puts Chat Input alone in the first layer, but Message History
  (which has no inbound edge) may start reading before Chat Input's write
  has committed, so whether a turn sees its own question varies from run
  to run. The script makes the read wait for pending writes, which is the
  order the layers declare (and the order Sandflow's schedule runs).
* Message History's `n_messages` and `order` are hidden (`show: false`)
  in this export, and Langflow ignores hidden fields' values; the script
  shows the fields it sets, as a seller would in the editor.
* The DataFrame holds Langflow's message-table columns, among them ids,
  run ids, owners and timestamps that differ on every run; the test
  compares the table's columns and its stable cells.
"""

import asyncio
import json
import os
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
FLOW = ROOT.parent / "shared" / "flows" / "legacy" / "memorychatbotnollm.json"
OUT = ROOT / "tests" / "langflow" / "memory-chatbot.json"
# Pure parts of Message History and Type Convert, recorded without a database.
PARTS = ROOT / "tests" / "langflow" / "message-history.json"
SESSION = "session-1"

# (input, tweaks for the Message History node), run in this order in one
# session. Each answer holds the history table, which holds earlier
# answers: filters keep the tables from growing turn over turn.
TURNS = [
    ("hello", {}),
    ("my name is Ada", {}),
    ("what is my name?", {"sender": "User"}),
    ("newest first", {"order": "Descending", "sender": "User", "n_messages": 2}),
    ("the last answer", {"sender": "Machine", "order": "Descending", "n_messages": 1}),
]


async def record():
    from langflow.services.deps import session_scope
    from langflow.services.utils import initialize_services

    await initialize_services()
    import langflow.memory as memory
    from langflow.services.database.models.user.model import User
    from lfx.graph import Graph
    from sqlmodel import select

    read = memory.aget_messages

    async def read_after_writes(*args, **kwargs):
        await asyncio.sleep(0.5)
        return await read(*args, **kwargs)

    memory.aget_messages = read_after_writes

    async with session_scope() as session:
        user = (await session.exec(select(User))).first()
    flow = json.loads(FLOW.read_text())
    turns = []
    for text, tweaks in TURNS:
        payload = json.loads(json.dumps(flow["data"]))
        for node in payload["nodes"]:
            if node["data"]["type"] == "Memory":
                for field, value in tweaks.items():
                    # Langflow builds a component from its *shown* fields
                    # only; a hidden one keeps the component's default. A
                    # seller shows a field to set it, so the script does too.
                    node["data"]["node"]["template"][field]["value"] = value
                    node["data"]["node"]["template"][field]["show"] = True
        graph = Graph.from_payload(payload, flow_id=flow["id"], user_id=str(user.id))
        outputs = await graph.arun([{"input_value": text}], inputs_components=[[]], types=["chat"], session_id=SESSION)
        answer = next(o.results["message"].text for r in outputs for o in r.outputs if o and o.results)
        turns.append({"input": text, "memory_tweaks": tweaks, "output": answer})
    return {"flow": "legacy/memorychatbotnollm.json", "session_id": SESSION, "turns": turns}


MESSAGES = [
    {"text": "hello", "sender": "User", "sender_name": "User", "session_id": "s1"},
    {"text": "hi! {braces} and 'quotes'", "sender": "Machine", "sender_name": "AI", "session_id": "s1"},
    {"text": "line one\n\n\nline | two", "sender": "User", "sender_name": "Ada", "session_id": "s1"},
]

TEMPLATES = ["{sender_name}: {text}", "{sender} said {text} in {session_id}", "{text}{missing}", "plain"]

TABLES = [
    [],
    [{"a": "x", "n": 1, "b": True, "l": [1], "z": None}, {"a": "longer text", "n": 22, "b": False, "l": [], "z": None}],
    [{"text": "a\n\nb", "pipe": "x|y", "blank": "   ", "d": {"k": "it's", "v": None}}],
]


def parts():
    """Message History's text (`data_to_text` over the retrieved messages)
    and Type Convert's DataFrame text (`DataFrame.to_message`)."""
    from lfx.helpers.data import data_to_text
    from lfx.schema.dataframe import DataFrame
    from lfx.schema.message import Message

    messages = [Message(**m) for m in MESSAGES]
    text = [{"template": t, "messages": MESSAGES, "text": data_to_text(t, messages)} for t in TEMPLATES]
    markdown = [{"rows": rows, "text": DataFrame(rows).to_message().text} for rows in TABLES]
    return {"text": text, "markdown": markdown}


def main():
    if os.environ.get("PYTHONHASHSEED") != "0":
        # Langflow's table columns follow Python's set order: pin it, so a
        # re-recording changes only what Langflow's behaviour changes.
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
    PARTS.write_text(json.dumps(parts(), indent=2, ensure_ascii=False) + "\n")
    print(f"recorded {PARTS}")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LANGFLOW_DATABASE_URL"] = f"sqlite:///{tmp}/langflow.db"
        os.environ["LANGFLOW_CONFIG_DIR"] = f"{tmp}/config"
        os.environ["LANGFLOW_SUPERUSER"] = "recorder"
        os.environ["LANGFLOW_SUPERUSER_PASSWORD"] = "recorder-password"
        os.environ["LANGFLOW_AUTO_LOGIN"] = "false"
        recording = asyncio.run(record())
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(recording, indent=2, ensure_ascii=False) + "\n")
    print(f"recorded {OUT}")


if __name__ == "__main__":
    main()
