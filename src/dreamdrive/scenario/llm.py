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
        from dreamdrive.scenario.retrieval import nearest

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
