"""Records reference outputs of Langflow 1.13 components for Sandflow's
parity tests: each case runs the component's own Python code (from the
`lfx` package Langflow installs) and the result is written to
`tests/langflow/<component>.json`, which the standard node library's tests
compare against.

    python3 -m venv /tmp/lf && /tmp/lf/bin/pip install uv \
      && /tmp/lf/bin/uv pip install --python /tmp/lf/bin/python langflow==1.13.0
    /tmp/lf/bin/python scripts/langflow/record.py

Add a case here, re-record, and the Rust test picks it up.
"""

import asyncio
import json
import pathlib

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "langflow"

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


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, record in [("calculator", calculator), ("prompt", prompt)]:
        path = OUT / f"{name}.json"
        path.write_text(json.dumps(record(), indent=2, ensure_ascii=False) + "\n")
        print(f"recorded {path}")


if __name__ == "__main__":
    main()
