"""Cheap, one-pass fingerprints of prompt text; the text itself is never kept.

Two signals come from a prompt:

* **Template skeleton**: harvesting runs fill one template with many questions. The fixed part
  sits at the start ("Solve the following, showing every step: …") or at the end
  ("… Explain your reasoning before answering."), so the head and the tail of the prompt,
  case-folded and with digits folded, are hashed separately. Two prompts from one template
  share one of the two fingerprints; two people typing freely share neither.
* **What is asked for**: whether the prompt asks the model to write out its reasoning, and which
  capability it exercises (coding, formal reasoning, rewriting, grading). Matching looks only at
  a bounded window at the head and tail, where instructions live, in one Aho-Corasick pass
  (C speed), so the cost per event stays flat whatever the prompt length.
"""

from __future__ import annotations

import zlib

import ahocorasick

#: Bytes of head and tail hashed into the template skeleton.
SKELETON_CHARS = 48
#: Characters of head and tail searched for instructions (the middle is the payload).
SCAN_CHARS = 256

# Capability / intent flags of one prompt (bit positions are part of the state format).
ELICITS_REASONING = 1
CODING = 2
FORMAL_REASONING = 4
REWRITING = 8
GRADING = 16

# Whole words (lower case) that signal each intent; matched only at word boundaries.
_WORDS: dict[int, str] = {
    ELICITS_REASONING: (
        "reasoning rationale justify justification derivation scratchpad step-by-step "
        "chain-of-thought monologue razonamiento razona raisonnement ragionamento "
        "raciocinio poshagovo"
    ),
    CODING: (
        "def function class import #include console.log refactor implement compile "
        "traceback python javascript typescript golang rust java sql regex algorithm bug "
        "code codebase script funktion codigo repository"
    ),
    FORMAL_REASONING: (
        "prove proof theorem lemma equation solve calculate compute integral derivative "
        "probability puzzle logic math olympiad resuelve demuestra beweise"
    ),
    REWRITING: (
        "rewrite rephrase paraphrase reword neutral sensitive censor reescribe umschreiben "
        "reformule reformuler"
    ),
    GRADING: "rubric grade grading grader score scoring rate rating califica bewerte",
}
# Phrases and marks that no single word gives away, matched anywhere.
_ANYWHERE: dict[int, tuple[str, ...]] = {
    ELICITS_REASONING: (
        "step by step", "think through", "think carefully", "thought process", "show your work",
        "show all work", "show every step", "explain your", "walk me through",
        "chain of thought", "before answering", "before you answer", "reason through",
        "reason about", "<think", "paso a paso", "schritt für schritt", "étape par étape",
        "passo a passo", "adım adım",
        # scripts written without spaces, and stems inflected beyond word matching
        "逐步", "一步一步", "推理", "思考过程", "思路", "详细解释", "пошагово", "рассужд",
        "단계별", "추론", "ステップ", "推論", "考え方", "raciocínio", "begründ",
    ),
    CODING: ("```", "代码", "函数", "código", "コード", "코드"),
    FORMAL_REASONING: (
        "证明", "求解", "计算", "数学", "докажи", "реши", "증명", "証明", "démontre",
    ),
    REWRITING: ("改写", "重写", "换个说法", "敏感", "перепиши"),
    GRADING: ("评分", "打分", "оцени", "채점", "採点", "évalue"),
}  # fmt: skip


def lexicon() -> dict[str, tuple[int, bool]]:
    """Every lexicon entry -> (intent flag, whole word only); a later equal entry wins, as in
    the automaton. The one source of the lexicon for the Python and the native path."""
    entries = {word: (flag, True) for flag, words in _WORDS.items() for word in words.split()}
    for flag, phrases in _ANYWHERE.items():
        entries.update((phrase, (flag, False)) for phrase in phrases)
    return entries


def _automaton() -> ahocorasick.Automaton:
    """One Aho-Corasick automaton over every lexicon entry: a single C pass finds them all."""
    automaton = ahocorasick.Automaton()
    for entry, (flag, whole_word) in lexicon().items():
        automaton.add_word(entry, (flag, len(entry), whole_word))
    automaton.make_automaton()
    return automaton


_LEXICON = _automaton()

# Fold digits to one class character for the template skeletons, at C speed.
_DIGITS = bytes.maketrans(b"0123456789", b"0000000000")


def prompt_features(prompt: str) -> tuple[int, int, int]:
    """(intent flags, head fingerprint, tail fingerprint) of a prompt, in one pass.

    The head and tail instruction windows are lower-cased and encoded once; the template
    skeletons hash their first and last `SKELETON_CHARS` bytes with digits folded, the intents
    come from one Aho-Corasick pass over the window (whole words where it matters).
    """
    if len(prompt) > 2 * SCAN_CHARS:
        window = prompt[:SCAN_CHARS].lower() + "\n" + prompt[-SCAN_CHARS:].lower()
    else:
        window = prompt.lower()
    data = window.encode()
    if len(data) <= SKELETON_CHARS:
        head = tail = zlib.crc32(data.strip().translate(_DIGITS)) or 1
    else:
        head = zlib.crc32(data[:SKELETON_CHARS].translate(_DIGITS)) or 1
        tail = zlib.crc32(data[-SKELETON_CHARS:].translate(_DIGITS)) or 1
    flags = 0
    last = len(window) - 1
    for end, (flag, length, whole_word) in _LEXICON.iter(window):
        if whole_word:
            start = end - length + 1
            if (start > 0 and window[start - 1].isalnum()) or (
                end < last and window[end + 1].isalnum()
            ):
                continue
        flags |= flag
    return flags, head, tail


def intent_flags(prompt: str) -> int:
    """Bit set of what the prompt asks for (see `prompt_features`)."""
    return prompt_features(prompt)[0]


def template_fingerprints(prompt: str) -> tuple[int, int]:
    """(head, tail) template-skeleton fingerprints (see `prompt_features`)."""
    _, head, tail = prompt_features(prompt)
    return head, tail
