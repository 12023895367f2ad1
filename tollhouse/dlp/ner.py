"""Optional NER for names, places and organisations: presidio's spaCy machinery, off by default.

Only a policy with an ``ner:`` section gets here. The spaCy pipeline is loaded once, when the
policy is loaded, from an installed package (``en_core_web_lg``) or a model directory; nothing is
ever downloaded. presidio's ``SpacyNlpEngine`` wraps the loaded pipeline (its own ``load()`` is
not called, because it downloads a missing model) and presidio's ``SpacyRecognizer`` turns the
entities into results, with presidio's label mapping (``GPE`` → ``LOCATION``, ``ORG`` →
``ORGANIZATION``, ...). Nothing in this module imports spaCy until a model is loaded.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["NER_DETECTOR", "NER_ENTITIES", "NerError", "NerRecognizer", "load_ner"]

# The entity types presidio's SpacyRecognizer reports (presidio's names, not spaCy's labels).
NER_ENTITIES = ("PERSON", "LOCATION", "ORGANIZATION", "NRP", "DATE_TIME")
NER_DETECTOR = "SpacyRecognizer"
# Components whose labels end up in ``doc.ents``: trained NER and rule-based entity rulers.
_ENT_FACTORIES = frozenset({"ner", "beam_ner", "entity_ruler"})


class NerError(ValueError):
    """The configured model cannot be used; the message says why, ``field`` which setting of the
    ``ner`` section is at fault (the caller adds file and line)."""

    def __init__(self, message: str, field: str = "model") -> None:
        super().__init__(message)
        self.field = field


@dataclass
class NerRecognizer:
    """A loaded spaCy pipeline behind presidio's NLP engine and SpacyRecognizer."""

    model: str
    entities: tuple[str, ...]
    min_score: float
    max_segment_chars: int
    language: str = "en"
    labels: tuple[str, ...] = ()  # the model's entity labels, when its components list them
    _engine: Any = field(default=None, repr=False, compare=False)
    _recognizer: Any = field(default=None, repr=False, compare=False)
    # Whether a spaCy Language may run in several threads at once is not promised: one at a time.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def applies_to(self, text: str) -> bool:
        """False for a segment longer than ``max_segment_chars``: NER skips it (it is slow)."""
        return len(text) <= self.max_segment_chars

    def find(self, text: str) -> list[tuple[int, int, str, float]]:
        """``(start, end, entity, score)`` for each entity in ``text``, offsets into ``text``."""
        with self._lock:
            artifacts = self._engine.process_text(text, self.language)
        results = self._recognizer.analyze(text, list(self.entities), artifacts)
        return [
            (r.start, r.end, r.entity_type, r.score)
            for r in results
            if r.score >= self.min_score and r.start < r.end
        ]


def load_ner(
    model: str,
    entities: tuple[str, ...],
    min_score: float,
    max_segment_chars: int,
    base_dir: Path,
) -> NerRecognizer:
    """Load ``model`` (an installed package, or a directory; relative to ``base_dir``).

    Raises :class:`NerError` when it is neither, when spaCy cannot load it, or when none of its
    entity labels maps to one of ``entities``. Never downloads anything.
    """
    import spacy
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    source: str | Path
    if spacy.util.is_package(model):
        source = model
    else:
        path = Path(model).expanduser()
        path = path if path.is_absolute() else base_dir / path
        if not path.is_dir():
            raise NerError(
                f"spaCy model {model!r} is not installed (no such package, no directory "
                f"{path}); install it where the gateway runs, e.g. pip install {model}, or point "
                "to a model directory. Tollhouse never downloads a model"
            )
        if not (path / "config.cfg").is_file():
            raise NerError(f"{path} is not a spaCy model directory (it has no config.cfg)")
        source = path
    try:
        nlp = spacy.load(source)
    except Exception as e:  # spaCy raises OSError, ValueError, its own errors, import errors...
        raise NerError(f"spaCy could not load model {model!r}: {type(e).__name__}: {e}") from e
    if max_segment_chars > nlp.max_length:
        raise NerError(
            f"max_segment_chars {max_segment_chars} is above the model's max_length "
            f"{nlp.max_length}",
            "max_segment_chars",
        )
    labels = tuple(
        sorted(
            {
                label
                for name in nlp.pipe_names
                if nlp.get_pipe_meta(name).factory in _ENT_FACTORIES
                for label in getattr(nlp.get_pipe(name), "labels", ())
            }
        )
    )
    lang = nlp.lang or "en"
    config = NerModelConfiguration()
    mapping = dict(config.model_to_presidio_entity_mapping or {})
    if labels and not any(mapping.get(label, label) in entities for label in labels):
        raise NerError(
            f"model {model!r} labels entities {', '.join(labels)}; none of them is "
            f"{', '.join(entities)} (presidio maps {_mapping_hint(mapping, entities)})",
            "entities",
        )
    # Labels that map to nothing asked for are dropped by the engine (no warning per entity).
    config.labels_to_ignore = [lb for lb in labels if mapping.get(lb, lb) not in entities]
    engine = SpacyNlpEngine(
        models=[{"lang_code": lang, "model_name": str(source)}],
        ner_model_configuration=config,
    )
    # Loaded above, not by SpacyNlpEngine.load(), which downloads a model it cannot find.
    engine.nlp = {lang: nlp}  # type: ignore[assignment]  # presidio annotates it as None
    recognizer = SpacyRecognizer(
        supported_language=lang,
        supported_entities=list(entities),
        ner_strength=config.default_score or 0.85,
    )
    return NerRecognizer(
        model=model,
        entities=entities,
        min_score=min_score,
        max_segment_chars=max_segment_chars,
        language=lang,
        labels=labels,
        _engine=engine,
        _recognizer=recognizer,
    )


def _mapping_hint(mapping: dict[str, str], entities: tuple[str, ...]) -> str:
    wanted = [f"{k} to {v}" for k, v in mapping.items() if v in entities and k != v]
    return ", ".join(wanted[:6]) or "no label to them"
