"""Writes the flow-control scenario flows of `runtime-host/tests/flows/` as
Langflow 1.13 exports them (built with `lfx`'s graph API and dumped) and
records what Langflow answers to each input with `lfx run`:

- `if-else/`: Chat Input -> If-Else (starts with "yes", not case
  sensitive) -> one Chat Output per branch; only the taken branch answers.
- `loop-parser/`: the Research Translation Loop's structure without ArXiv
  or a model: Chat Input -> Split Text (one line per chunk) -> Loop ->
  Parser ("Item: {text}") -> back into the Loop; its `done` table goes to
  Chat Output.

    /tmp/lf/bin/python scripts/langflow/test_flows.py

Each scenario directory holds `flow.json` and one `<case>.input` /
`<case>.expected` pair per input (`expected` is the answering Chat
Output's id, a newline, then its text).
"""

import copy
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "runtime-host" / "tests" / "flows"


def handle(obj: dict) -> str:
    return json.dumps(obj).replace('"', "\u0153")


def with_handles(edge: dict) -> dict:
    edge["sourceHandle"] = handle(edge["data"]["sourceHandle"])
    edge["targetHandle"] = handle(edge["data"]["targetHandle"])
    edge["id"] = f"reactflow__edge-{edge['source']}{edge['sourceHandle']}-{edge['target']}{edge['targetHandle']}"
    return edge


def if_else() -> dict:
    from lfx.components.flow_controls.conditional_router import ConditionalRouterComponent
    from lfx.components.input_output import ChatInput, ChatOutput
    from lfx.graph import Graph

    chat_input = ChatInput(_id="ChatInput-ie001")
    router = ConditionalRouterComponent(_id="ConditionalRouter-ie002")
    router.set(input_text=chat_input.message_response, match_text="yes", operator="starts with", case_sensitive=False)
    on_true = ChatOutput(_id="ChatOutput-ie003")
    on_true.set(input_value=router.true_response)
    on_false = ChatOutput(_id="ChatOutput-ie004")
    flow = Graph(chat_input, on_true).dump(name="If-Else branches")
    # A graph dumps what leads to its end; the second branch is added by hand.
    flow["data"]["nodes"].append(Graph(on_false, on_false).dump()["data"]["nodes"][0])
    edge = copy.deepcopy(next(e for e in flow["data"]["edges"] if e["target"] == on_true._id))
    edge["target"] = edge["data"]["targetHandle"]["id"] = on_false._id
    edge["data"]["sourceHandle"]["name"] = "false_result"
    flow["data"]["edges"].append(edge)
    return flow


def loop_parser() -> dict:
    from lfx.components.flow_controls.loop import LoopComponent
    from lfx.components.input_output import ChatInput, ChatOutput
    from lfx.components.processing.parser import ParserComponent
    from lfx.components.processing.split_text import SplitTextComponent
    from lfx.graph import Graph

    chat_input = ChatInput(_id="ChatInput-lp001")
    split = SplitTextComponent(_id="SplitText-lp002")
    split.set(data_inputs=chat_input.message_response, chunk_size=1, chunk_overlap=0, separator="\\n")
    loop = LoopComponent(_id="LoopComponent-lp003")
    loop.set(data=split.split_text)
    parser = ParserComponent(_id="ParserComponent-lp004")
    parser.set(input_data=loop.item_output, mode="Parser", pattern="Item: {text}", sep="\n")
    chat_output = ChatOutput(_id="ChatOutput-lp005")
    chat_output.set(input_value=loop.done_output)
    flow = Graph(chat_input, chat_output).dump(name="Loop over lines")
    body = Graph(chat_input, parser).dump()
    known = {n["id"] for n in flow["data"]["nodes"]}
    flow["data"]["nodes"] += [n for n in body["data"]["nodes"] if n["id"] not in known]
    pairs = {(e["source"], e["target"]) for e in flow["data"]["edges"]}
    flow["data"]["edges"] += [e for e in body["data"]["edges"] if (e["source"], e["target"]) not in pairs]
    # The feedback edge targets the Loop's `item` output, as Langflow's editor saves it.
    source = {"dataType": "ParserComponent", "id": parser._id, "name": "parsed_text", "output_types": ["Message"]}
    target = {"dataType": "LoopComponent", "id": loop._id, "name": "item", "output_types": ["Data", "Message"]}
    flow["data"]["edges"].append(
        {"source": parser._id, "target": loop._id, "data": {"sourceHandle": source, "targetHandle": target}}
    )
    return flow


MODEL = [{"name": "gpt-test", "provider": "OpenAI"}]


def structured_output() -> dict:
    from lfx.components.input_output import ChatInput, ChatOutput
    from lfx.components.llm_operations.structured_output import StructuredOutputComponent
    from lfx.components.processing.parser import ParserComponent
    from lfx.graph import Graph

    chat_input = ChatInput(_id="ChatInput-so001")
    extract = StructuredOutputComponent(_id="StructuredOutput-so002")
    extract.set(
        input_value=chat_input.message_response,
        model=MODEL,
        schema_name="Person",
        output_schema=[
            {"name": "name", "description": "The name", "type": "str", "multiple": "False"},
            {"name": "age", "description": "The age", "type": "int", "multiple": "False"},
            {"name": "tags", "description": "Tags", "type": "str", "multiple": "True"},
        ],
    )
    parser = ParserComponent(_id="ParserComponent-so003")
    parser.set(input_data=extract.build_structured_output, mode="Parser", pattern="{name} ({age}) {tags}", sep="\n")
    chat_output = ChatOutput(_id="ChatOutput-so004")
    chat_output.set(input_value=parser.parse_combined_text)
    return Graph(chat_input, chat_output).dump(name="Structured Output")


def batch_run() -> dict:
    from lfx.components.input_output import ChatInput, ChatOutput
    from lfx.components.llm_operations.batch_run import BatchRunComponent
    from lfx.components.processing.parser import ParserComponent
    from lfx.components.processing.split_text import SplitTextComponent
    from lfx.graph import Graph

    chat_input = ChatInput(_id="ChatInput-br001")
    split = SplitTextComponent(_id="SplitText-br002")
    split.set(data_inputs=chat_input.message_response, chunk_size=1, chunk_overlap=0, separator="\\n", clean_output=True)
    batch = BatchRunComponent(_id="BatchRunComponent-br003")
    batch.set(model=MODEL, df=split.split_text, column_name="text", system_message="Answer briefly.")
    parser = ParserComponent(_id="ParserComponent-br004")
    parser.set(input_data=batch.run_batch, mode="Parser", pattern="{batch_index}: {model_response}", sep="\n")
    chat_output = ChatOutput(_id="ChatOutput-br005")
    chat_output.set(input_value=parser.parse_combined_text)
    return Graph(chat_input, chat_output).dump(name="Batch Run")


SCENARIOS = {
    "if-else": (if_else, {"yes": "Yes, please", "no": "no thanks", "empty": ""}),
    "loop-parser": (loop_parser, {"three-lines": "first line\nsecond line\nthird", "one-line": "only one"}),
    # These call a model: their expected answers (the test model server's)
    # are in `runtime-host/tests/text_flows.rs`.
    "structured-output": (structured_output, {}),
    "batch-run": (batch_run, {}),
}


def main():
    for name, (build, inputs) in SCENARIOS.items():
        directory = OUT / name
        directory.mkdir(parents=True, exist_ok=True)
        flow = build()
        for edge in flow["data"]["edges"]:
            with_handles(edge)
        path = directory / "flow.json"
        path.write_text(json.dumps(flow, indent=1, ensure_ascii=False, default=str) + "\n")
        for case, text in inputs.items():
            run = subprocess.run(
                [sys.executable, "-m", "lfx", "run", str(path), text, "--format", "json"],
                capture_output=True, text=True, check=False, timeout=300,
            )
            answer = json.loads(run.stdout.strip().splitlines()[-1])
            (directory / f"{case}.input").write_text(text)
            (directory / f"{case}.expected").write_text(f"{answer.get('component_id')}\n{answer.get('result')}")
            print(f"{name}/{case}: {answer.get('component_id')}: {answer.get('result')!r}")


if __name__ == "__main__":
    main()
