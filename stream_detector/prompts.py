"""Cheap, one-pass fingerprints of prompt text; the text itself is never kept.

Two signals come from a prompt:

* **Template skeleton**: harvesting runs fill a few templates with many questions. The fixed
  part is a sentence or line of instruction: before the question ("Solve the following,
  showing every step: …"), after it ("… Explain your reasoning before answering."), or both.
  The prompt's instruction window is cut into segments (lines and sentences), and the first
  and the last substantial segment (at least `MIN_SEGMENT_BYTES`, so that "Q3:" or
  "Question 12." do not count; digits folded, blanks collapsed) are hashed: the head and the
  tail fingerprints. Two prompts of one template share one of them whatever the question, the
  opening words or the numbering; two people typing freely share neither. The account state
  then counts how often a fingerprint recurs (see `stream_detector.state`).
* **What is asked for**: whether the prompt asks the model to write out its reasoning, and which
  capability it exercises (coding, formal reasoning, rewriting, grading). Matching looks only at
  a bounded window at the head and tail, where instructions live, in one Aho-Corasick pass
  (C speed), so the cost per event stays flat whatever the prompt length.
"""

from __future__ import annotations

import re
import zlib

import ahocorasick

#: Bytes of the head and tail segments hashed into the template skeleton.
SKELETON_CHARS = 48
#: Shortest segment (bytes, blanks collapsed) that can carry a template's instruction.
MIN_SEGMENT_BYTES = 16
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
        "reasoning rationale justify justification derive derivation derivations scratchpad "
        "step-by-step chain-of-thought monologue aloud inference inferences rigorously "
        "razonamiento razona razonar raisonnement ragionamento raciocinio poshagovo "
        "herleitung gedankengang denkprozess lösungsweg redenering rozumowanie uzasadnij "
        "penalaran"
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
    GRADING: (
        "rubric rubrics grade grading grader score scoring rate rating califica bewerte "
        "rúbrica puntuación évalue barème"
    ),
}
# Phrases and marks that no single word gives away, matched anywhere. Harvesting prompts ask
# for the work to be shown in many words and languages; these are the common forms.
_ANYWHERE: dict[int, tuple[str, ...]] = {
    ELICITS_REASONING: (
        "step by step", "each step", "every step", "all steps", "numbered steps",
        "think through", "think carefully", "thought process", "thinking process",
        "show your work", "show all work", "show all of the work", "show the work",
        "show every step", "show your reasoning", "show all your", "explain your",
        "walk me through", "work through", "chain of thought", "before answering",
        "before you answer", "reason through", "reason about", "reason out loud",
        "think out loud", "thinking aloud", "first principles", "in great detail",
        "explain in detail", "every logical step", "every assumption", "how you approach",
        "how you would solve", "why you reject", "<think",
        "paso a paso", "proceso de pensamiento", "tu proceso", "explica detalladamente",
        "passo a passo", "passo dopo passo", "raciocínio", "explique detalhadamente",
        "étape par étape", "ta démarche", "schritt für schritt", "begründ",
        "шаг за шагом", "по шагам", "ход решения", "ход рассуждений", "подробно объясни",
        "adım adım", "akıl yürüt", "langkah demi langkah", "proses berpikir",
        "krok po kroku", "stap voor stap", "từng bước", "suy luận", "lập luận",
        "चरण दर चरण", "कदम दर कदम", "خطوة بخطوة",
        # the same asks ("your thought process", "every step", "your reasoning") in the
        # languages above, as people phrase them
        "processus de réflexion", "processus de pensée", "chaque étape", "sans sauter",
        "processo de pensamento", "cada etapa", "cada passo", "sem pular",
        "cada paso", "sin saltar", "processo di pensiero", "ogni passaggio",
        "zwischenschritt", "jeden schritt", "überlegungen", "denkweg",
        "استدلال", "تفكيرك", "طريقة تفكير", "كل خطوة",
        # scripts written without spaces, and stems inflected beyond word matching
        "逐步", "一步一步", "推理", "思考过程", "思维链", "思路", "详细解释", "解题过程", "推导",
        "详细说明理由", "пошагово", "рассужд", "обоснуй", "단계별", "추론", "생각하는 과정",
        "풀이 과정", "ステップ", "推論", "考え方", "思考過程", "段階的", "途中式",
    ),
    CODING: ("```", "代码", "函数", "código", "コード", "코드"),
    FORMAL_REASONING: (
        "证明", "求解", "计算", "数学", "докажи", "реши", "증명", "証明", "démontre",
    ),
    REWRITING: ("改写", "重写", "换个说法", "敏感", "перепиши"),
    GRADING: ("评分", "打分", "оцени", "балл", "채점", "採点", "évalue", "sub-score"),
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
#: Where a segment ends: a line break, sentence or clause punctuation before a blank (or at the
#: end), or the full-width punctuation of CJK text (no blank follows it there).
SEGMENT_BREAK = re.compile(
    rb"\n|[.?!:;](?=[ \t\r\f\v\n]|$)|\xe3\x80\x82|\xef\xbc[\x9f\x81\x9a\x9b]"
)
_BLANKS = re.compile(rb"[ \t\r\f\v]+")


def skeleton(data: bytes) -> tuple[int, int]:
    """(head, tail) fingerprints of an instruction window (lower-cased, UTF-8): crc32 of the
    first `SKELETON_CHARS` bytes of its first substantial segment and of the last bytes of
    its last one, digits folded; the whole window's ends when no segment is substantial.
    Never 0 (0 means "no prompt")."""
    first = last = None
    for piece in SEGMENT_BREAK.split(data):
        segment = _BLANKS.sub(b" ", piece).strip(b" ")
        if len(segment) >= MIN_SEGMENT_BYTES:
            if first is None:
                first = segment
            last = segment
    if first is None or last is None:
        first = last = _BLANKS.sub(b" ", data.replace(b"\n", b" ")).strip(b" ")
    head = zlib.crc32(first[:SKELETON_CHARS].translate(_DIGITS)) or 1
    tail = zlib.crc32(last[-SKELETON_CHARS:].translate(_DIGITS)) or 1
    return head, tail


def prompt_features(prompt: str) -> tuple[int, int, int]:
    """(intent flags, head fingerprint, tail fingerprint) of a prompt, in one pass.

    The head and tail instruction windows are lower-cased and encoded once; the template
    skeletons come from its first and last substantial segments (`skeleton`), the intents
    from one Aho-Corasick pass over the window (whole words where it matters).
    """
    if len(prompt) > 2 * SCAN_CHARS:
        window = prompt[:SCAN_CHARS].lower() + "\n" + prompt[-SCAN_CHARS:].lower()
    else:
        window = prompt.lower()
    head, tail = skeleton(window.encode())
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
