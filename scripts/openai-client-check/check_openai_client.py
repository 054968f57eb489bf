#!/usr/bin/env python3
"""Drives a running gptneo-server with the official `openai` package, unchanged, as a user would.

Usage: check_openai_client.py --base-url http://127.0.0.1:PORT/v1 [--api-key KEY]
Exits non-zero with the first failed check. Prints one line per check and a closing
'N passed, N failed' line.
"""
import argparse
import sys

import openai
from openai import OpenAI

checks = []


def check(function):
    checks.append(function)
    return function


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


@check
def models_list(client, ctx):
    models = client.models.list()
    ids = [m.id for m in models.data]
    expect(len(ids) == 1, f"expected one model, got {ids}")
    ctx["model"] = ids[0]
    expect(client.models.retrieve(ids[0]).id == ids[0], "models.retrieve disagrees with models.list")


@check
def completion(client, ctx):
    r = client.completions.create(model=ctx["model"], prompt="Hello, my name is", max_tokens=8, temperature=0)
    expect(r.object == "text_completion", f"object {r.object}")
    expect(r.id.startswith("cmpl-"), f"id {r.id}")
    expect(len(r.choices) == 1, f"{len(r.choices)} choices")
    c = r.choices[0]
    expect(isinstance(c.text, str), "text is not a string")
    expect(c.finish_reason in ("stop", "length"), f"finish_reason {c.finish_reason}")
    expect(c.logprobs is None, "logprobs without asking")
    u = r.usage
    expect(u.prompt_tokens == 5, f"prompt_tokens {u.prompt_tokens} (GPT-2 BPE of the prompt is 5 tokens)")
    expect(1 <= u.completion_tokens <= 8, f"completion_tokens {u.completion_tokens}")
    expect(u.total_tokens == u.prompt_tokens + u.completion_tokens, "total_tokens")
    ctx["greedy"] = c.text
    ctx["greedy_finish"] = c.finish_reason


@check
def streaming_matches_non_streaming(client, ctx):
    stream = client.completions.create(model=ctx["model"], prompt="Hello, my name is", max_tokens=8, temperature=0,
                                       stream=True, stream_options={"include_usage": True})
    text, finish, usage, chunks = "", None, None, 0
    for chunk in stream:
        chunks += 1
        expect(chunk.object == "text_completion", f"chunk object {chunk.object}")
        if chunk.choices:
            text += chunk.choices[0].text
            finish = chunk.choices[0].finish_reason or finish
        else:
            usage = chunk.usage
    expect(text == ctx["greedy"], f"streamed {text!r} != non-streamed {ctx['greedy']!r}")
    expect(finish == ctx["greedy_finish"], f"streamed finish_reason {finish}")
    expect(usage is not None and usage.prompt_tokens == 5, f"final usage chunk {usage}")
    expect(chunks >= 2, f"only {chunks} chunks")


@check
def logprobs_and_echo(client, ctx):
    prompt = "The quick brown fox"
    r = client.completions.create(model=ctx["model"], prompt=prompt, max_tokens=4, temperature=0, logprobs=3,
                                  echo=True, extra_body={"ignore_eos": True})
    c = r.choices[0]
    expect(c.text.startswith(prompt), f"echo: {c.text!r} does not start with the prompt")
    lp = c.logprobs
    n_prompt = r.usage.prompt_tokens
    expect(len(lp.tokens) == n_prompt + 4, f"{len(lp.tokens)} tokens for {n_prompt} prompt + 4 generated")
    expect(lp.token_logprobs[0] is None, "first prompt token has a logprob")
    expect(all(isinstance(x, float) and x <= 0 for x in lp.token_logprobs[1:]), f"token_logprobs {lp.token_logprobs}")
    expect(lp.top_logprobs[0] is None, "first prompt token has top_logprobs")
    expect(all(1 <= len(t) <= 4 for t in lp.top_logprobs[1:]), f"top_logprobs sizes {[len(t) for t in lp.top_logprobs[1:]]}")
    expect("".join(lp.tokens) == c.text, f"tokens {lp.tokens} do not spell the text {c.text!r}")
    offsets = [sum(len(t) for t in lp.tokens[:i]) for i in range(len(lp.tokens))]
    expect(lp.text_offset == offsets, f"text_offset {lp.text_offset} != {offsets}")
    # Greedy: every generated token is the best alternative.
    for token, top in zip(lp.tokens[n_prompt:], lp.top_logprobs[n_prompt:]):
        expect(max(top, key=top.get) == token, f"greedy token {token!r} is not the top of {top}")


@check
def streaming_logprobs_and_echo(client, ctx):
    prompt = "The quick brown fox"
    stream = client.completions.create(model=ctx["model"], prompt=prompt, max_tokens=4, temperature=0, logprobs=1,
                                       echo=True, stream=True, extra_body={"ignore_eos": True})
    text, tokens = "", []
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.text
            if choice.logprobs:
                tokens += choice.logprobs.tokens
    expect(text.startswith(prompt), f"streamed echo {text!r}")
    expect("".join(tokens) == text, f"streamed tokens {tokens} do not spell {text!r}")


@check
def several_prompts_and_choices(client, ctx):
    r = client.completions.create(model=ctx["model"], prompt=["One", "Two"], max_tokens=3, n=2, seed=7)
    expect([c.index for c in r.choices] == [0, 1, 2, 3], f"indices {[c.index for c in r.choices]}")
    r2 = client.completions.create(model=ctx["model"], prompt=[[464, 2068], [15496]], max_tokens=2, temperature=0)
    expect(len(r2.choices) == 2, f"token prompts gave {len(r2.choices)} choices")


@check
def seed_is_reproducible(client, ctx):
    a = client.completions.create(model=ctx["model"], prompt="Once upon a time", max_tokens=6, temperature=1, seed=1234)
    b = client.completions.create(model=ctx["model"], prompt="Once upon a time", max_tokens=6, temperature=1, seed=1234)
    expect(a.choices[0].text == b.choices[0].text, f"seed 1234 gave {a.choices[0].text!r} then {b.choices[0].text!r}")


@check
def stop_and_best_of(client, ctx):
    r = client.completions.create(model=ctx["model"], prompt="Hello", max_tokens=16, temperature=0, stop=["\n", "."],
                                  best_of=2, n=1, user="client-check", presence_penalty=0.1, frequency_penalty=0.1,
                                  logit_bias={"50256": -100}, extra_body={"top_k": 5, "repetition_penalty": 1.1})
    c = r.choices[0]
    expect("\n" not in c.text and "." not in c.text, f"stop sequence in {c.text!r}")


@check
def errors_are_openai_errors(client, ctx):
    for kwargs, param in [({"max_tokens": -1}, "max_tokens"), ({"max_tokens": 100000}, "max_tokens"),
                          ({"logprobs": 50}, "logprobs"), ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
                          ({"suffix": "x"}, "suffix"), ({"n": 1000}, "n")]:
        try:
            client.completions.create(model=ctx["model"], prompt="Hi", **kwargs)
        except openai.BadRequestError as error:
            body = error.body if isinstance(error.body, dict) else {}
            body = body.get("error", body)
            expect(body.get("param") == param, f"{kwargs}: param {body.get('param')!r}, expected {param!r}")
        else:
            raise AssertionError(f"{kwargs} was accepted")
    try:
        client.completions.create(model="no-such-model", prompt="Hi")
    except openai.NotFoundError:
        pass
    else:
        raise AssertionError("an unknown model was accepted")


@check
def wrong_key_is_401(client, ctx):
    if not ctx["api_key_required"]:
        return
    bad = OpenAI(base_url=ctx["base_url"], api_key="wrong-key", max_retries=0)
    try:
        bad.models.list()
    except openai.AuthenticationError:
        return
    raise AssertionError("a wrong API key was accepted")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", default="unused")
    parser.add_argument("--api-key-required", action="store_true")
    args = parser.parse_args()
    client = OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0, timeout=60)
    ctx = {"base_url": args.base_url, "api_key_required": args.api_key_required}
    passed = failed = 0
    for function in checks:
        try:
            function(client, ctx)
            print(f"ok   {function.__name__}")
            passed += 1
        except Exception as error:  # report every check, then fail
            print(f"FAIL {function.__name__}: {type(error).__name__}: {error}")
            failed += 1
            if "model" not in ctx:
                break
    print(f"openai-client-check: {passed} of {passed + failed} checks ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
