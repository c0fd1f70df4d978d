"""Records reference outputs of Langflow 1.13 components for Sandflow's
parity tests: each case runs the component's own Python code (from the
`lfx` package Langflow installs) and the result is written to
`tests/langflow/<component>.json`, which the standard node library's tests
compare against.

    python3 -m venv /tmp/lf && /tmp/lf/bin/pip install uv \
      && /tmp/lf/bin/uv pip install --python /tmp/lf/bin/python langflow==1.13.0
    /tmp/lf/bin/python scripts/langflow/record.py

Add a case here, re-record, and the Rust test picks it up.

Where a shared flow export carries a component, its own `code` field is
what Langflow runs for that flow, so the component is built from that code
(`from_export`); the If-Else router, in no export, comes from `lfx`.
"""

import asyncio
import json
import math
import pathlib
from types import SimpleNamespace

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "langflow"
FLOWS = ROOT.parent / "shared" / "flows"

CALCULATOR = [
    "4*4*(33/22)+12-20",
    "2 ** 3 ** 2",
    "2 ** 10",
    "1/3",
    "10 / 4",
    "1e3 + 0.5",
    "0.0000001",
    "2.5 * (3 - 1)",
    "1/0",
    "-3 + 1",
    "7 % 2",
    "7 // 2",
    "x + 1",
    "2 +",
    "(1",
    "1)",
    "",
]

PROMPT = [
    {"template": "You said: {user_input}", "vars": {"user_input": "hi there"}},
    {"template": "{a} and {b}, {{literal}}", "vars": {"a": "x", "b": "y"}},
    {"template": "Nothing to fill", "vars": {}},
    {"template": "Hello {{name}}!", "vars": {"name": "Ada"}, "mustache": True},
    {"template": "{{a}} {{ b }}", "vars": {"a": "1", "b": "2"}, "mustache": True},
]


def calculator():
    from lfx.components.utilities.calculator_core import CalculatorComponent

    cases = []
    for expression in CALCULATOR:
        data = CalculatorComponent(expression=expression).evaluate_expression().data
        cases.append({"expression": expression, "data": data})
    return cases


def prompt():
    from lfx.schema.message import Message

    cases = []
    for case in PROMPT:
        fmt = "mustache" if case.get("mustache") else "f-string"
        try:
            message = asyncio.run(
                Message.from_template_and_variables(template_format=fmt, template=case["template"], **case["vars"])
            )
            result = {"text": message.text}
        except Exception as error:  # noqa: BLE001 - the error is the recorded outcome
            result = {"error": str(error)}
        cases.append({**case, "mustache": bool(case.get("mustache")), **result})
    return cases



def from_export(flow: str, component_type: str):
    """The component class a shared export defines in its `code` field."""
    from lfx.custom.eval import eval_custom_component_code

    export = json.loads((FLOWS / flow).read_text())
    for node in export["data"]["nodes"]:
        if node["data"].get("type") == component_type:
            return eval_custom_component_code(node["data"]["node"]["template"]["code"]["value"])
    msg = f"{flow} has no {component_type}"
    raise LookupError(msg)


def failure(error: Exception) -> dict:
    return {"error_type": type(error).__name__, "error": str(error)}


def no_nan(value):
    """`value` with pandas' NaN as null, so the recording is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [no_nan(v) for v in value]
    return value


def records(df) -> list:
    """DataFrame rows as JSON objects (NaN as null)."""
    return no_nan(df.to_dict(orient="records"))


def make_input(spec: dict):
    """`{"table": rows}`, `{"data": obj}`, `{"data_list": [obj, ...]}` or `{"message": text}`."""
    from lfx.schema.data import Data
    from lfx.schema.dataframe import DataFrame
    from lfx.schema.message import Message

    if "table" in spec:
        return DataFrame(spec["table"])
    if "data" in spec:
        return Data(data=spec["data"], default_value=spec.get("default_value", ""))
    if "data_list" in spec:
        return [Data(data=d) for d in spec["data_list"]]
    return Message(text=spec["message"])


PEOPLE = [
    {"name": "Ada", "age": 36, "score": 9.5, "city": "London"},
    {"name": "Alan", "age": 41, "score": 8.25, "city": "Wilmslow"},
    {"name": "Grace", "age": 85, "score": 10.0, "city": "Arlington"},
]

PARSER = [
    {"input": {"table": PEOPLE}, "pattern": "{name} ({age}) from {city}", "sep": "\n"},
    {"input": {"table": PEOPLE}, "pattern": "{name:>8}|{score:.2f}|{age:03d}|{score}", "sep": " / "},
    {"input": {"table": [{"a": 1, "b": 2.5}, {"a": 2, "b": 1}]}, "pattern": "{a}+{b}", "sep": ","},
    {"input": {"table": [{"a": 1, "s": "x"}, {"s": "y"}]}, "pattern": "{a}|{s}", "sep": ","},
    {"input": {"table": [{"flag": True, "none": None, "list": [1, "two"], "obj": {"k": "v"}, "t": "ü"}]},
     "pattern": "{flag} {none} {list} {obj} {t} {list[1]} {obj[k]} {t!r}", "sep": ""},
    {"input": {"table": [{"n": 1234567, "f": 0.000012345}]}, "pattern": "{n:,} {n:_x} {f} {f:e} {f:.3g} {n:>+12,}", "sep": ""},
    {"input": {"table": PEOPLE}, "pattern": "{missing}", "sep": "\n"},
    {"input": {"table": PEOPLE}, "pattern": "{}", "sep": "\n"},
    {"input": {"table": PEOPLE}, "pattern": "{{literal}} {name}", "sep": "\n"},
    {"input": {"table": PEOPLE}, "pattern": "oops {name", "sep": "\n"},
    {"input": {"table": PEOPLE}, "pattern": "oops } {name}", "sep": "\n"},
    {"input": {"table": PEOPLE}, "pattern": "{age:s}", "sep": "\n"},
    {"input": {"data": {"text": "hello wörld 🌍"}}, "pattern": "Text: {text}", "sep": "\n"},
    {"input": {"data": {"text": "hi"}}, "pattern": "{text} [{missing}]", "sep": "\n"},
    {"input": {"data": {"text": "hi"}, "default_value": "N/A"}, "pattern": "{text} [{missing}]", "sep": "\n"},
    {"input": {"data": {"title": "T", "tags": ["a", "b"], "n": 2.0}}, "pattern": "{title}: {tags} {tags[0]} {n}", "sep": "\n"},
    {"input": {"data": {"text": "x"}}, "pattern": "{0}", "sep": "\n"},
    {"input": {"data_list": [{"text": "one"}, {"text": "two"}, {"other": 3}]}, "pattern": "- {text}", "sep": " | "},
    {"input": {"table": PEOPLE}, "mode": "Stringify"},
    {"input": {"table": [{"text": "a|b\r\nc", "n": None}, {"text": None, "n": None}, {"text": "  \n\n x\n\n", "n": 2}]}, "mode": "Stringify"},
    {"input": {"table": [{"text": "a|b\r\nc", "n": None}, {"text": None, "n": None}, {"text": "  \n\n x\n\n\ny", "n": 2}]}, "mode": "Stringify", "clean_data": True},
    {"input": {"data": {"text": "héllo", "nested": {"list": [1, 2.5, None, True]}, "empty": {}, "e": []}}, "mode": "Stringify"},
    {"input": {"data": {"text": "line one\n\n\n\n  \nline two"}}, "mode": "Stringify"},
    {"input": {"data_list": [{"a": 1}, {"b": "x"}]}, "mode": "Stringify"},
]


def parser():
    component = from_export("starter/market-research.json", "ParserComponent")
    cases = []
    for case in PARSER:
        mode = case.get("mode", "Parser")
        kwargs = {"input_data": make_input(case["input"]), "mode": mode, "pattern": case.get("pattern", "Text: {text}"),
                  "sep": case.get("sep", "\n")}
        parser = component(**kwargs)
        if "clean_data" in case:
            parser.clean_data = case["clean_data"]
        try:
            result = {"text": parser.parse_combined_text().text}
        except Exception as error:  # noqa: BLE001 - the error is the recorded outcome
            result = failure(error)
        cases.append({**case, "mode": mode, **result})
    return cases


PROSE = (
    "Langflow is a visual framework for building multi-agent and RAG applications.\n\n"
    "It is open-source, Python-powered, fully customizable, and model and vector store agnostic.\n"
    "Its intuitive interface allows for easy manipulation of AI building blocks.\n\n\n"
    "Developers can quickly prototype and turn their ideas into powerful, real-world solutions."
)
UNICODE = "Grüße aus Köln. 日本語のテキスト。Emoji 🎉🎉 here. Ünïcödé çà et là. Ελληνικά κείμενα. Ok."
SPACES = "  a  b\t\tc \n\n  d e  \n f  "


def split_cases():
    cases = []
    for text in [PROSE, UNICODE, SPACES]:
        for separator in ["\n", "\\n", " ", ".", ""]:
            for keep in ["False", "True", "Start", "End"]:
                for size, overlap in [(10, 0), (40, 10), (100, 50)]:
                    if separator == "" and size > 10:
                        continue
                    cases.append({"input": {"data": {"text": text, "source": "doc.txt"}}, "chunk_size": size,
                                  "chunk_overlap": overlap, "separator": separator, "keep_separator": keep})
    cases += [
        {"input": {"data": {"text": PROSE}}, "chunk_size": 1000, "chunk_overlap": 200, "separator": "\n", "keep_separator": "False"},
        {"input": {"data": {"text": PROSE}}, "chunk_size": 30, "chunk_overlap": 5, "separator": "/n", "keep_separator": "False"},
        {"input": {"data": {"text": "a\tb\tc"}}, "chunk_size": 1, "chunk_overlap": 0, "separator": "/t", "keep_separator": "False"},
        {"input": {"data": {"text": PROSE}}, "chunk_size": 50, "chunk_overlap": 0, "separator": "\n\n", "keep_separator": "End"},
        {"input": {"data": {"text": PROSE}}, "chunk_size": 50, "chunk_overlap": 0, "separator": "and", "keep_separator": "Start"},
        {"input": {"data": {"text": PROSE}}, "chunk_size": 10, "chunk_overlap": 20, "separator": " ", "keep_separator": "False"},
        {"input": {"data": {"text": PROSE}}, "chunk_size": 0, "chunk_overlap": 0, "separator": " ", "keep_separator": "False"},
        {"input": {"data": {"body": "one two three", "id": 7}}, "text_key": "body", "chunk_size": 8, "chunk_overlap": 0, "separator": " ", "keep_separator": "False"},
        {"input": {"data": {"other": "x"}}, "chunk_size": 8, "chunk_overlap": 0, "separator": " ", "keep_separator": "False"},
        {"input": {"table": [{"text": "alpha beta gamma", "page": 1, "sender": "me", "content": "c"}, {"text": "delta epsilon", "page": 2, "sender": "me", "content": "d"}]},
         "chunk_size": 11, "chunk_overlap": 5, "separator": " ", "keep_separator": "False"},
        {"input": {"table": [{"body": "x y z"}]}, "text_key": "text", "chunk_size": 3, "chunk_overlap": 0, "separator": " ", "keep_separator": "False"},
        {"input": {"table": [{"text": "alpha beta gamma", "page": 1}]}, "chunk_size": 11, "chunk_overlap": 0, "separator": " ", "keep_separator": "False", "clean_output": True},
        {"input": {"message": UNICODE}, "chunk_size": 20, "chunk_overlap": 5, "separator": " ", "keep_separator": "False", "clean_output": True},
    ]
    return cases


def split_text():
    component = from_export("starter/hybrid-search-rag.json", "SplitText")
    cases = []
    for case in split_cases():
        splitter = component(
            data_inputs=make_input(case["input"]),
            chunk_size=case["chunk_size"],
            chunk_overlap=case["chunk_overlap"],
            separator=case["separator"],
            keep_separator=case["keep_separator"],
            text_key=case.get("text_key", "text"),
            clean_output=case.get("clean_output", False),
        )
        try:
            result = {"rows": records(splitter.split_text())}
        except Exception as error:  # noqa: BLE001
            result = failure(error)
        cases.append({**case, **result})
    return cases


def type_convert():
    """The export's Type Convert (legacy Memory Chatbot): its module-level converters."""
    from lfx.schema.dataframe import DataFrame

    component = from_export("legacy/memorychatbotnollm.json", "TypeConverterComponent")
    cases = []
    inputs = [
        {"data": {"text": "plain text", "n": 1}},
        {"data": {"a": 1, "b": [True, None], "c": "it's"}},
        {"data": {"text": 42}},
        {"table": PEOPLE},
        {"table": [{"text": "a|b\n\nc", "n": None}, {"text": None, "n": None}, {"text": " ", "n": 2.5}]},
        {"data": {"items": [{"a": 1}, {"a": 2}]}},
    ]
    for spec in inputs:
        value = make_input(spec)
        converter = component(input_data=value)
        out = {"input": spec}
        for name, method in [("message", "convert_to_message"), ("data", "convert_to_data"), ("dataframe", "convert_to_dataframe")]:
            converter.output_type = name
            try:
                result = getattr(converter, method)()
                if name == "message":
                    out[name] = {"text": str(result.text)}
                elif name == "data":
                    out[name] = {"data": no_nan(json.loads(json.dumps(result.data, default=str)))}
                else:
                    out[name] = {"rows": records(DataFrame(result))}
            except Exception as error:  # noqa: BLE001
                out[name] = failure(error)
        cases.append(out)
    return cases


def message_to_data():
    from fastapi.encoders import jsonable_encoder
    from lfx.schema.message import Message

    component = from_export("legacy/looptest.json", "MessagetoData")
    cases = []
    for text, sender, name in [("hello", "User", "User"), ("ünïcode ✓", "Machine", "AI"), ("", "User", "")]:
        message = Message(text=text, sender=sender, sender_name=name, session_id="session-1")
        data = jsonable_encoder(component(message=message).convert_message_to_data().data)
        cases.append({"message": {"text": text, "sender": sender, "sender_name": name, "session_id": "session-1"}, "data": data})
    data = jsonable_encoder(component(message="not a message").convert_message_to_data().data)
    cases.append({"message": None, "data": data})
    return cases


def parse_data():
    from lfx.schema.data import Data

    component = from_export("legacy/looptest.json", "ParseData")
    cases = []
    items = [{"text": "one", "n": 1}, {"data": {"x": "nested"}}, {"error": "boom"}, {"text": "ü", "list": [1]}]
    for template, sep in [("{text}", "\n"), ("{text}|{n}|{x}|{missing}", " ; "), ("{data}", "\n"), ("{list[0]}", ","), ("{0}", "\n")]:
        node = component(data=[Data(data=dict(i)) for i in items], template=template, sep=sep)
        try:
            text = node.parse_data().text
            listed = [d.data for d in component(data=[Data(data=dict(i)) for i in items], template=template, sep=sep).parse_data_as_list()]
            result = {"text": text, "data_list": listed}
        except Exception as error:  # noqa: BLE001
            result = failure(error)
        cases.append({"items": items, "template": template, "sep": sep, **result})
    return cases


ROUTER_TEXTS = [
    ("Hello World", "hello world"), ("Hello World", "World"), ("Hello World", "hello"), ("abc123", r"[a-z]+\d+"),
    ("xabc", "abc"), ("abc", "("), ("10", "9.5"), ("9.5", "10"), ("1e3", "1000"), (" 1_000 ", "999"),
    ("ten", "9"), ("", ""), ("ÄBC", "äbc"), ("inf", "1e308"), ("nan", "nan"),
]
OPERATORS = ["equals", "not equals", "contains", "starts with", "ends with", "regex", "less than",
             "less than or equal", "greater than", "greater than or equal"]


def conditional_router():
    from lfx.components.flow_controls.conditional_router import ConditionalRouterComponent
    from lfx.schema.message import Message

    router = ConditionalRouterComponent()
    conditions = []
    for input_text, match_text in ROUTER_TEXTS:
        for operator in OPERATORS:
            for case_sensitive in [True, False]:
                result = router.evaluate_condition(input_text, match_text, operator, case_sensitive=case_sensitive)
                conditions.append({"input_text": input_text, "match_text": match_text, "operator": operator,
                                   "case_sensitive": case_sensitive, "result": result})
    routes = []
    for matches in [True, False]:
        for max_iterations in [10, 1, 0]:
            for default_route in ["false_result", "true_result"]:
                for wanted in [["true_result", "false_result"], ["true_result"], ["false_result"]]:
                    for true_text in ["T", ""]:
                        node = ConditionalRouterComponent(
                            input_text="abc", match_text="a" if matches else "z", operator="starts with",
                            case_sensitive=True, max_iterations=max_iterations, default_route=default_route,
                            true_case_message=Message(text=true_text), false_case_message=Message(text="F"),
                        )
                        stopped = []
                        graph = SimpleNamespace(
                            context={}, conditional_exclusion_sources={}, conditionally_excluded_vertices=set(),
                            exclude_branch_conditionally=lambda vertex_id, output_name: None,
                            mark_branch=lambda vertex_id, output_name, state, stopped=stopped: stopped.append(output_name),
                        )
                        node._vertex = SimpleNamespace(id="r", graph=graph, outputs=[], edges_source_names=set(wanted),
                                                      outgoing_edges=[None])
                        node._pre_run_setup()
                        produced = {}
                        for name in wanted:
                            message = node.true_response() if name == "true_result" else node.false_response()
                            if name not in stopped:
                                produced[name] = message.text
                        routes.append({"matches": matches, "max_iterations": max_iterations, "default_route": default_route,
                                       "wanted": wanted, "true_text": true_text, "produced": produced})
    return {"conditions": conditions, "routes": routes}


DOCS = [
    {"file_path": "components/openai.py", "text": "class OpenAIModel: ChatOpenAI model_name temperature"},
    {"file_path": "components/parser.py", "text": "class ParserComponent: template Stringify DataFrame"},
    {"file_path": "components/split.py", "text": "class SplitText: chunk_size chunk_overlap separator"},
    {"file_path": "components/agent.py", "text": "class Agent: tools model OpenAI temperature"},
    {"file_path": "components/empty.py", "text": None},
    {"file_path": "components/number.py", "text": 42},
]


def keyword_search():
    from lfx.schema.dataframe import DataFrame

    component = from_export("starter/langflowassistant.json", "DataFrameKeywordSearch")
    cases = []
    for keywords, match_type, case_sensitive, limit, column in [
        (["openai"], "any", False, 10, "text"),
        (["OpenAI"], "any", True, 10, "text"),
        (["class", "temperature"], "all", False, 10, "text"),
        (["openai", "temperature", "model"], "coverage", False, 10, "text"),
        (["chunk", "template", "tools", "42"], "coverage", False, 2, "text"),
        (["", "  parser "], "any", False, 10, "text"),
        ([], "any", False, 3, "text"),
        (["py"], "any", False, 10, "file_path"),
        (["x"], "any", False, 10, "missing"),
    ]:
        node = component(dataframe=DataFrame(DOCS), column=column, keywords=keywords, match_type=match_type,
                         case_sensitive=case_sensitive, number_candidates=limit)
        try:
            result = {"rows": records(node.search())}
        except Exception as error:  # noqa: BLE001
            result = failure(error)
        cases.append({"rows_in": DOCS, "column": column, "keywords": keywords, "match_type": match_type,
                      "case_sensitive": case_sensitive, "number_candidates": limit, **result})
    return cases


RECORDERS = [
    ("calculator", calculator),
    ("prompt", prompt),
    ("parser", parser),
    ("split-text", split_text),
    ("type-convert", type_convert),
    ("message-to-data", message_to_data),
    ("parse-data", parse_data),
    ("conditional-router", conditional_router),
    ("keyword-search", keyword_search),
]


def main():
    import sys

    only = set(sys.argv[1:])
    OUT.mkdir(parents=True, exist_ok=True)
    for name, record in RECORDERS:
        if only and name not in only:
            continue
        path = OUT / f"{name}.json"
        path.write_text(json.dumps(record(), indent=2, ensure_ascii=False) + "\n")
        print(f"recorded {path}")


if __name__ == "__main__":
    main()
