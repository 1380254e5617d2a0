"""Cheap, one-pass fingerprints of prompt text; the text itself is never kept.

Two signals come from a prompt:

* **Template skeleton**: harvesting runs fill one template with many questions. The fixed part
  sits at the start ("Solve the following, showing every step: …") or at the end
  ("… Explain your reasoning before answering."), so the head and the tail of the prompt,
  case-folded and with digits folded, are hashed separately. Two prompts from one template
  share one of the two fingerprints; two people typing freely share neither.
* **What is asked for**: whether the prompt asks the model to write out its reasoning, and which
  capability it exercises (coding, formal reasoning, rewriting, grading). Matching looks only at
  a bounded window at the head and tail, where instructions live, and mostly by word-set
  intersection (C speed), so the cost per event stays flat whatever the prompt length.
"""

from __future__ import annotations

import zlib

#: Characters of head and tail hashed into the template skeleton.
SKELETON_CHARS = 48
#: Characters of head and tail searched for instructions (the middle is the payload).
SCAN_CHARS = 400

# Capability / intent flags of one prompt (bit positions are part of the state format).
ELICITS_REASONING = 1
CODING = 2
FORMAL_REASONING = 4
REWRITING = 8
GRADING = 16

# Whole words (ASCII, lower case) that signal each intent.
_WORDS: dict[int, frozenset[bytes]] = {
    ELICITS_REASONING: frozenset(
        b"reasoning rationale justify justification derivation scratchpad step-by-step "
        b"chain-of-thought monologue razonamiento razona raisonnement ragionamento "
        b"raciocinio poshagovo".split()
    ),
    CODING: frozenset(
        b"``` def function class import #include console.log refactor implement compile "
        b"traceback python javascript typescript golang rust java sql regex algorithm bug "
        b"code codebase script funktion codigo repository".split()
    ),
    FORMAL_REASONING: frozenset(
        b"prove proof theorem lemma equation solve calculate compute integral derivative "
        b"probability puzzle logic math olympiad resuelve demuestra beweise".split()
    ),
    REWRITING: frozenset(
        b"rewrite rephrase paraphrase reword neutral sensitive censor reescribe umschreiben "
        b"reformule reformuler".split()
    ),
    GRADING: frozenset(
        b"rubric grade grading grader score scoring rate rating califica bewerte".split()
    ),
}
# Phrases that no single word gives away (all ask for reasoning), searched as substrings only
# when their first word is among the prompt's words.
_PHRASES: tuple[str, ...] = (
    "step by step",
    "think through",
    "think carefully",
    "thought process",
    "show your work",
    "show all work",
    "show every step",
    "explain your",
    "walk me through",
    "chain of thought",
    "before answering",
    "before you answer",
    "reason through",
    "reason about",
    "<think",
    "paso a paso",
    "schritt für schritt",
    "étape par étape",
    "passo a passo",
    "adım adım",
)
# Stems of scripts written without spaces (or inflected beyond word matching).
_NON_ASCII: dict[int, tuple[str, ...]] = {
    ELICITS_REASONING: (
        "逐步",
        "一步一步",
        "推理",
        "思考过程",
        "思路",
        "详细解释",
        "пошагово",
        "рассужд",
        "단계별",
        "추론",
        "ステップ",
        "推論",
        "考え方",
        "raciocínio",
        "begründ",
    ),
    CODING: ("代码", "函数", "código", "コード", "코드"),
    FORMAL_REASONING: (
        "证明",
        "求解",
        "计算",
        "数学",
        "докажи",
        "реши",
        "증명",
        "証明",
        "démontre",
    ),
    REWRITING: ("改写", "重写", "换个说法", "敏感", "перепиши"),
    GRADING: ("评分", "打分", "оцени", "채점", "採点", "évalue"),
}

# Fold digits to one class character and punctuation (not - # ` .) to spaces, at C speed.
_DIGITS = bytes.maketrans(b"0123456789", b"0000000000")
_PUNCT = "!\"$%&'()*+,/:;<=>?@[\\]^_{|}~\t\n\r"
_SPLIT = bytes.maketrans(_PUNCT.encode(), b" " * len(_PUNCT))


def _phrase_keys() -> dict[bytes, tuple[str, ...]]:
    keys: dict[bytes, list[str]] = {}
    for phrase in _PHRASES:
        keys.setdefault(phrase.encode().translate(_SPLIT).split()[0], []).append(phrase)
    return {key: tuple(phrases) for key, phrases in keys.items()}


_PHRASE_KEYS = _phrase_keys()
#: Every intent word with the flags it signals (one set intersection finds them all).
_WORD_FLAGS: dict[bytes, int] = {}
for _flag, _vocabulary in _WORDS.items():
    for _word in _vocabulary:
        _WORD_FLAGS[_word] = _WORD_FLAGS.get(_word, 0) | _flag


def _skeleton(text: str) -> int:
    """A stable 32-bit fingerprint of a short text's shape (not Python's salted hash)."""
    return zlib.crc32(text.lower().encode("utf-8", "replace").translate(_DIGITS)) or 1


def template_fingerprints(prompt: str) -> tuple[int, int]:
    """(head, tail) skeleton fingerprints; a short prompt has one shape for both."""
    if len(prompt) <= SKELETON_CHARS:
        fp = _skeleton(prompt.strip())
        return fp, fp
    return _skeleton(prompt[:SKELETON_CHARS]), _skeleton(prompt[-SKELETON_CHARS:])


def intent_flags(prompt: str) -> int:
    """Bit set of what the prompt asks for, from its head and tail instruction windows."""
    if len(prompt) > 2 * SCAN_CHARS:
        window = prompt[:SCAN_CHARS].lower() + "\n" + prompt[-SCAN_CHARS:].lower()
    else:
        window = prompt.lower()
    words = set(window.encode("utf-8", "replace").translate(_SPLIT).split())
    flags = 0
    for word in words.intersection(_WORD_FLAGS):
        flags |= _WORD_FLAGS[word]
    if not flags & ELICITS_REASONING:
        for word in words.intersection(_PHRASE_KEYS):
            for phrase in _PHRASE_KEYS[word]:
                if phrase in window:
                    flags |= ELICITS_REASONING
                    break
    if not window.isascii():
        for flag, stems in _NON_ASCII.items():
            if not flags & flag:
                for stem in stems:
                    if stem in window:
                        flags |= flag
                        break
    return flags
