"""Real client libraries against a running Sandflow data plane.

Run by `tests/clients.rs`, which starts `sandflow serve` with tenant
acme's agents `prompt` (prompt-echo.json, no model) and `chat` (Basic
Prompting on the test suite's model server) and passes SANDFLOW_BASE and
SANDFLOW_KEY. Exits non-zero, saying what differed, on the first
mismatch.
"""

import os

import openai
from openai.types.responses import Response
from langflow_sdk import Client
from langflow_sdk.exceptions import LangflowAuthError, LangflowNotFoundError

BASE = os.environ["SANDFLOW_BASE"]
KEY = os.environ["SANDFLOW_KEY"]


def expect_error(kind, call):
    try:
        call()
    except kind as error:
        return error
    raise AssertionError(f"expected {kind.__name__}")


def langflow_sdk():
    with Client(BASE, api_key=KEY) as client:
        reply = client.run("prompt", input_value="from langflow-sdk")
        assert reply.first_text_output() == "You said: from langflow-sdk", reply
        assert reply.session_id, reply

        chunks = list(client.stream("chat", input_value="streamed words"))
        assert chunks, "stream() gave no events: the body's `stream: true` was not honoured"
        events = [chunk.event for chunk in chunks]
        assert events[0] == "add_message" and events[-1] == "end", events
        assert "token" in events, f"the model's tokens are streamed: {events}"
        tokens = "".join(chunk.text for chunk in chunks if chunk.is_token)
        final = chunks[-1].final_response()
        assert final is not None and final.first_text_output() == tokens, (tokens, final)
        assert tokens.startswith("You said: "), tokens

        missing = expect_error(LangflowNotFoundError, lambda: client.run("no-such-agent", input_value="x"))
        assert "no-such-agent" in str(missing), missing

    with Client(BASE, api_key="not-a-key") as stranger:
        refused = expect_error(LangflowAuthError, lambda: stranger.run("prompt", input_value="x"))
        assert refused.status_code == 401, refused


def openai_sdk():
    client = openai.OpenAI(base_url=f"{BASE}/v1", api_key=KEY)
    messages = [{"role": "user", "content": "hello there"}]
    completion = client.chat.completions.create(model="chat", messages=messages)
    text = completion.choices[0].message.content
    assert text.startswith("You said: "), completion
    assert completion.choices[0].finish_reason == "stop", completion
    assert completion.usage.total_tokens > 0, completion.usage

    parts, usage = [], None
    stream = client.chat.completions.create(
        model="chat", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        if chunk.usage:
            usage = chunk.usage
    assert len(parts) > 1, f"streamed in pieces: {parts}"
    assert "".join(parts) == text, (parts, text)
    assert usage is not None and usage.total_tokens > 0, usage

    ids = sorted(model.id for model in client.models.list())
    assert ids == ["chat", "memory", "prompt"], f"the key's agents are its models: {ids}"
    assert client.models.retrieve("chat").id == "chat"
    expect_error(openai.NotFoundError, lambda: client.models.retrieve("no-such-agent"))

    plain = client.chat.completions.create(model="prompt", messages=[{"role": "user", "content": "no model"}])
    assert plain.choices[0].message.content == "You said: no model", plain

    missing = expect_error(
        openai.NotFoundError, lambda: client.chat.completions.create(model="no-such-agent", messages=messages)
    )
    assert "no-such-agent" in str(missing), missing
    stranger = openai.OpenAI(base_url=f"{BASE}/v1", api_key="not-a-key", max_retries=0)
    expect_error(
        openai.AuthenticationError, lambda: stranger.chat.completions.create(model="chat", messages=messages)
    )


def openai_responses():
    client = openai.OpenAI(base_url=f"{BASE}/v1", api_key=KEY)
    first = client.responses.create(model="chat", input="hello there")
    assert first.status == "completed", first
    assert first.output_text.startswith("You said: "), first
    assert first.usage.total_tokens > 0, first.usage

    # The stream helper rebuilds the response from the events and checks
    # their order; its deltas make the same answer.
    with client.responses.stream(model="chat", input="hello there") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert len(deltas) > 1, deltas
    assert "".join(deltas) == final.output_text == first.output_text, (deltas, final.output_text)
    assert final.usage.total_tokens > 0, final.usage

    # The SDK builds events without checking them: check each against its
    # model, as a stricter client would.
    events = list(client.responses.create(model="chat", input="strict", stream=True))
    for event in events:
        type(event).model_validate(event.to_dict())
    assert events[-1].type == "response.completed", [e.type for e in events]
    Response.model_validate(events[-1].response.to_dict())
    Response.model_validate(first.to_dict())

    # A conversation goes on from the response it names: an agent with
    # memory sends the earlier turn to its model (tests/clients.rs looks).
    earlier = client.responses.create(model="memory", input="my name is Ada")
    later = client.responses.create(model="memory", input="what is my name?", previous_response_id=earlier.id)
    assert later.previous_response_id == earlier.id and later.status == "completed", later

    # Input as messages, and a flow without a model, by Langflow's path too.
    plain = client.responses.create(model="prompt", input=[{"role": "user", "content": "no model"}])
    assert plain.output_text == "You said: no model", plain
    langflow_path = openai.OpenAI(base_url=f"{BASE}/api/v1", api_key=KEY)
    assert langflow_path.responses.create(model="prompt", input="via Langflow").output_text == "You said: via Langflow"
    with client.responses.stream(model="prompt", input="whole") as stream:
        assert stream.get_final_response().output_text == "You said: whole"

    missing = expect_error(openai.NotFoundError, lambda: client.responses.create(model="no-such-agent", input="x"))
    assert "no-such-agent" in str(missing), missing
    tools = [{"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}]
    refused = expect_error(openai.BadRequestError, lambda: client.responses.create(model="chat", input="x", tools=tools))
    assert "tools" in str(refused), refused


langflow_sdk()
openai_sdk()
openai_responses()
print("langflow-sdk and openai: ok")
