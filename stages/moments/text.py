"""Text features for moment scoring and extractive metadata (used by the highlights stage).

Everything here is explainable on purpose: a clip's score is a weighted sum of named
features, each computed from the words with a rule a person can check.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from engine.types import SENTENCE_END, Word

_TOKEN = re.compile(r"[a-z0-9']+")
SENTENCE_PAUSE = 0.7  # seconds of silence that end a sentence even without punctuation

STOPWORDS = frozenset(
    """a about above after again against all am an and any are aren't as at be because been before
    being below between both but by can can't cannot could couldn't did didn't do does doesn't doing
    don't down during each few for from further had hadn't has hasn't have haven't having he he'd he'll
    he's her here here's hers herself him himself his how how's i i'd i'll i'm i've if in into is isn't
    it it's its itself let's me more most mustn't my myself no nor not of off on once only or other
    ought our ours ourselves out over own same shan't she she'd she'll she's should shouldn't so some
    such than that that's the their theirs them themselves then there there's these they they'd
    they'll they're they've this those through to too under until up very was wasn't we we'd we'll
    we're we've were weren't what what's when when's where where's which while who who's whom why
    why's with won't would wouldn't you you'd you'll you're you've your yours yourself yourselves
    just also really like get got go going gonna one two thing things lot well now even much many
    every make made say said know think want way us still back take yes yeah okay oh""".split()
)

_SECOND_PERSON = frozenset({"you", "your", "you're", "yours", "yourself", "you've", "you'll"})
_CONTRAST = frozenset({"but", "however", "actually", "instead", "although", "yet", "except"})
_STRONG = frozenset(
    """never always secret nobody everyone everybody best worst mistake mistakes truth wrong
    biggest most only must stop nothing everything impossible guaranteed proven shocking
    insane crazy huge massive million billion percent fail failure win""".split()
)

EMOTIONS: dict[str, frozenset[str]] = {
    "excitement": frozenset(
        "amazing incredible awesome love exciting excited huge insane crazy wow best win winning".split()
    ),
    "joy": frozenset("happy glad fun enjoy enjoyed wonderful beautiful great delicious smile".split()),
    "surprise": frozenset("surprising surprised unexpected suddenly shocking secret nobody".split()),
    "anger": frozenset("angry hate unfair terrible awful furious stupid ridiculous wrong".split()),
    "fear": frozenset("afraid scared risk danger dangerous worry worried fail failure lose".split()),
    "sadness": frozenset("sad lost loss hard difficult struggle painful alone miss".split()),
}


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def content_tokens(text: str) -> list[str]:
    return [stem(t) for t in tokens(text) if t not in STOPWORDS and len(t) > 2]


def stem(token: str) -> str:
    """A light suffix stripper: enough to match 'hiring' with 'hire' and 'tomatoes' with 'tomato'."""
    for suffix in ("ings", "ing", "ies", "es", "ed", "ly", "s"):
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            token = token[: -len(suffix)]
            break
    return token.rstrip("e") if len(token) > 4 else token


@dataclass(frozen=True)
class Sentence:
    words: tuple[Word, ...]
    first_index: int  # index of the first word in the transcript
    starts_thought: bool  # begins after a sentence end (or at the start of speech)
    ends_thought: bool  # ends with . ? !

    @property
    def start(self) -> float:
        return self.words[0].start

    @property
    def end(self) -> float:
        return self.words[-1].end

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


#: a pause this long inside a sentence is a phrase boundary, where a title may end
PHRASE_PAUSE = 0.25


def phrased(sentence: Sentence, pause_s: float = PHRASE_PAUSE) -> str:
    """The sentence's text with its pauses marked as phrase boundaries (``PAUSE_MARK`` after a word
    followed by a pause of ``pause_s`` or more): the ASR often writes no comma ("And so my fellow
    Americans ask not ..."), but the speaker's pauses say where the phrases are."""
    ws = sentence.words
    out = []
    for i, w in enumerate(ws):
        out.append(w.text)
        if i + 1 < len(ws) and ws[i + 1].start - w.end >= pause_s and not w.text.endswith((",", ";", ":")):
            out.append(PAUSE_MARK)
    return " ".join(out)


def split_sentences(words: Sequence[Word], max_len: float) -> list[Sentence]:
    """Sentences on punctuation or long pauses; sentences longer than ``max_len`` are split
    further at commas or the longest pauses, so every unit can fit inside a clip."""
    out: list[Sentence] = []
    cur: list[Word] = []
    first = 0
    for i, w in enumerate(words):
        if cur and w.start - cur[-1].end >= SENTENCE_PAUSE:
            out.append(Sentence(tuple(cur), first, True, False))
            cur, first = [], i
        cur.append(w)
        if w.text.endswith(SENTENCE_END):
            out.append(Sentence(tuple(cur), first, True, True))
            cur, first = [], i + 1
    if cur:
        out.append(Sentence(tuple(cur), first, True, cur[-1].text.endswith(SENTENCE_END)))
    units: list[Sentence] = []
    for s in out:
        units.extend(_split_long(s, max_len))
    return units


def _split_long(s: Sentence, max_len: float) -> list[Sentence]:
    if s.end - s.start <= max_len * 0.8 or len(s.words) < 2:
        return [s]
    # Prefer a comma, else the longest pause, near the middle.
    best, best_cost = 1, math.inf
    for k in range(1, len(s.words)):
        gap = s.words[k].start - s.words[k - 1].end
        comma = s.words[k - 1].text.endswith((",", ";", ":"))
        balance = abs((s.words[k].start - s.start) / (s.end - s.start) - 0.5)
        cost = balance - (0.3 if comma else 0.0) - min(gap, 0.5)
        if cost < best_cost:
            best, best_cost = k, cost
    left = Sentence(s.words[:best], s.first_index, s.starts_thought, False)
    right = Sentence(s.words[best:], s.first_index + best, False, s.ends_thought)
    return _split_long(left, max_len) + _split_long(right, max_len)


def hook_strength(text: str) -> float:
    """0-1: how much the opening line makes a viewer stay (question, number, 'you', contrast, claim)."""
    toks = tokens(text)
    if not toks:
        return 0.0
    score = 0.0
    if text.rstrip().endswith("?"):
        score += 0.35
    if any(t.isdigit() or t in {"percent", "million", "billion", "thousand", "hundred"} for t in toks):
        score += 0.2
    if any(t in _SECOND_PERSON for t in toks):
        score += 0.2
    if any(t in _CONTRAST for t in toks):
        score += 0.1
    score += min(0.3, 0.15 * sum(t in _STRONG for t in toks))
    if len(toks) <= 12:  # short openers land harder
        score += 0.1
    return min(1.0, score)


_INTENSIFIERS = frozenset(
    "so very really absolutely totally completely incredibly extremely literally seriously truly".split()
)


def emotion_intensity(text: str) -> float:
    """0-1: how charged the words are (emotion lexicon hits, intensifiers, exclamations)."""
    toks = tokens(text)
    if not toks:
        return 0.0
    hits = sum(any(t in lexicon for lexicon in EMOTIONS.values()) for t in toks)
    boost = 0.5 * sum(t in _INTENSIFIERS for t in toks) + 0.5 * text.count("!")
    return min(1.0, 6.0 * (hits + boost) / max(len(toks), 8))


def dominant_emotion(text: str) -> str:
    counts: Counter[str] = Counter()
    toks = tokens(text)
    for name, lexicon in EMOTIONS.items():
        counts[name] = sum(t in lexicon for t in toks)
    if text.count("?") >= 2 and counts.most_common(1)[0][1] == 0:
        return "curiosity"
    name, n = counts.most_common(1)[0]
    return name if n > 0 else ("curiosity" if "?" in text else "calm")


class TfIdf:
    """Term weights over the transcript's sentences, for keywords and prompt relevance."""

    def __init__(self, documents: Sequence[str]) -> None:
        self.n_docs = max(1, len(documents))
        df: Counter[str] = Counter()
        for doc in documents:
            df.update(set(content_tokens(doc)))
        self.df = df

    def idf(self, term: str) -> float:
        return math.log((1 + self.n_docs) / (1 + self.df.get(term, 0))) + 1.0

    def vector(self, text: str) -> dict[str, float]:
        tf = Counter(content_tokens(text))
        return {t: c * self.idf(t) for t, c in tf.items()}

    def similarity(self, a: str, b: str) -> float:
        va, vb = self.vector(a), self.vector(b)
        dot = sum(w * vb.get(t, 0.0) for t, w in va.items())
        na = math.sqrt(sum(w * w for w in va.values()))
        nb = math.sqrt(sum(w * w for w in vb.values()))
        return dot / (na * nb) if na and nb else 0.0

    def expand_query(self, prompt: str, sentences: Sequence[str], top: int = 3, terms: int = 8) -> str:
        """Pseudo-relevance feedback (Rocchio): add the main terms of the sentences that
        best match the prompt, so a window about the prompt's topic matches even where it
        does not repeat the prompt's exact words."""
        ranked = sorted(sentences, key=lambda s: -self.similarity(prompt, s))[:top]
        hits = [s for s in ranked if self.similarity(prompt, s) > 0]
        if not hits:
            return prompt
        extra = self.keywords(" ".join(hits), terms)
        return " ".join([prompt, prompt] + extra)  # the prompt's own words weigh double

    def keywords(self, text: str, k: int = 5) -> list[str]:
        """Top terms of ``text`` as their most common surface form (for hashtags)."""
        surface: dict[str, Counter[str]] = {}
        for t in tokens(text):
            if t in STOPWORDS or len(t) <= 2 or t.isdigit() or "'" in t:
                continue
            surface.setdefault(stem(t), Counter())[t] += 1
        vec = self.vector(text)
        ranked = sorted(surface, key=lambda s: (-vec.get(s, 0.0), s))
        return [surface[s].most_common(1)[0][0] for s in ranked[:k]]


TITLE_MAX_CHARS = 60
HOOK_MAX_CHARS = 120
#: a phrase never ends on these: articles and determiners, prepositions, conjunctions, auxiliaries
#: (a title reads unfinished: "… the Treasury of", "… and the"); object pronouns may end one ("… for you")
_DANGLING = frozenset(
    """a an the this that these those my your our their its some any each every no
    about above across after against along amid among around at before behind below beneath beside
    besides between beyond by despite down during except for from in including inside into like near
    of off on onto out outside over past per plus since than through throughout till to toward towards
    under until unto up upon versus via with within without
    and but or nor so yet because although though while whereas if unless whether as which who whom
    whose when where how why what
    is are was were be been being am do does did have has had will would shall should can could may
    might must very just really not also even""".split())
#: words that start a new phrase (prepositions, conjunctions, relatives): a title with no clause
#: short enough may be cut just before one
_PHRASE_STARTERS = frozenset(
    """about above across after against along amid among around at before behind below beneath beside
    besides between beyond by despite during except for from in including inside into near of off on
    onto outside over past per since through throughout till to toward towards under until unto upon
    versus via with within without and but or nor so yet because although though while whereas if
    unless whether which who whom whose when where""".split())
#: words a phrase does not start with: they join it to what came before ("and", "so", "but")
_LEADING = frozenset("and but so or then also because um uh well like".split())
#: where phrased() marks a pause (split on like a comma, never part of a title)
PAUSE_MARK = "\u2016"
_CLAUSE_BREAK = re.compile(r"(?<=[,;:])\s+|\s+[—–-]{1,2}\s+|\s*\u2016\s*")


def _clauses(sentence: str) -> list[str]:
    """The sentence's clauses: split after , ; : and at dashes (the phrase boundaries there are)."""
    return [c.strip() for c in _CLAUSE_BREAK.split(sentence.strip()) if c.strip()]


def _tidy(phrase: str) -> str:
    """The phrase without its closing punctuation or a leading conjunction."""
    words = phrase.strip().rstrip(".?!,;:…—–- ").split()
    while len(words) > 2 and words[0].lower().strip(",") in _LEADING:
        words.pop(0)
    return " ".join(words).rstrip(",;:")


def _complete(phrase: str, min_words: int = 3) -> bool:
    words = phrase.split()
    return (len(words) >= min_words and len(phrase) <= TITLE_MAX_CHARS
            and words[-1].lower().strip(",;:'\"") not in _DANGLING and any(c.isalpha() for c in phrase))


def title_candidates(sentence: str) -> list[tuple[str, str]]:
    """(phrase, kind) for every complete phrase of ``sentence`` that could be a title: the whole
    sentence, or runs of whole clauses (kind "sentence", "opening" for runs from its start, "clause")."""
    clauses = _clauses(sentence)
    out: list[tuple[str, str]] = []
    for i in range(len(clauses)):
        for j in range(i + 1, len(clauses) + 1):
            phrase = _tidy(" ".join(clauses[i:j]))
            if len(phrase) > TITLE_MAX_CHARS:
                break
            kind = "sentence" if (i, j) == (0, len(clauses)) else "opening" if i == 0 else "clause"
            if _complete(phrase):
                out.append((phrase, kind))
    return out


def _cut_at_boundary(sentence: str) -> str:
    """A sentence with no short enough clause: its longest opening that ends just before a word that
    starts a phrase (a preposition, conjunction or relative) and not on a function word."""
    words = [w for w in _tidy(sentence).split() if w != PAUSE_MARK]
    best = ""
    for k in range(3, len(words)):
        head = " ".join(words[:k]).rstrip(",;:")
        if len(head) > TITLE_MAX_CHARS:
            break
        if words[k].lower().strip(",;:") in _PHRASE_STARTERS and _complete(head):
            best = head
    if best:
        return best
    while words and (len(" ".join(words)) > TITLE_MAX_CHARS or words[-1].lower().strip(",;:") in _DANGLING):
        words.pop()
    return " ".join(words).rstrip(",;:")


def title_from(sentences: Sequence[str], tfidf: TfIdf) -> str:
    """A title of at most 60 characters that is a complete phrase of the clip: the whole sentence or
    the run of clauses richest in the clip's keywords, ending at a phrase boundary (never on "the",
    "of", "and", "to" …), first letter capitalised."""
    if not sentences:
        return "Untitled moment"
    keys = set(tfidf.keywords(" ".join(sentences), 6))
    kind_bonus = {"sentence": 0.8, "opening": 0.3, "clause": 0.2}

    def merit(phrase: str, kind: str, position: int) -> float:
        """Keyword density and coverage, a whole thought over a fragment, and length up to ~45
        characters (a two-word title says little); earlier sentences win ties."""
        n = len(tokens(phrase))
        weight = sum(tfidf.vector(phrase).values()) / (1 + n ** 0.5)
        covered = len(keys & set(tokens(phrase)))
        return (weight + 0.6 * covered + kind_bonus[kind] + 0.8 * min(len(phrase), 45) / 45
                - 0.05 * position)

    scored = [(merit(p, k, i), p) for i, s in enumerate(sentences) for p, k in title_candidates(s)]
    if scored:
        text = max(scored)[1]
    else:
        text = _cut_at_boundary(max(sentences, key=lambda s: sum(tfidf.vector(s).values()))) or "Untitled moment"
    text = " ".join(text.replace(PAUSE_MARK, " ").split())
    return text[:1].upper() + text[1:]


def hook_from(sentences: Sequence[str]) -> str:
    """The viral hook: a whole sentence of the clip (never cut), the strongest opener among the first
    three that fit in 120 characters, else the clip's shortest sentence."""
    whole = [s.strip() for s in sentences if s.strip()]
    if not whole:
        return ""
    fitting = [s for s in whole[:3] if len(s) <= HOOK_MAX_CHARS] or [s for s in whole if len(s) <= HOOK_MAX_CHARS]
    if not fitting:
        return min(whole, key=len)
    return max(fitting, key=lambda s: (hook_strength(s), -whole.index(s)))


def hashtags_from(text: str, tfidf: TfIdf, k: int = 5) -> tuple[str, ...]:
    """Lower-case keywords that occur in ``text`` as words (letters only), best first."""
    present = set(tokens(text))
    tags = [t.lower() for t in tfidf.keywords(text, k * 2)
            if t.isalpha() and t.lower() in present and t.lower() not in _DANGLING]
    return tuple(dict.fromkeys(tags))[:k]

def keyword_forms(keywords: Sequence[str], texts: Sequence[str]) -> tuple[str, ...]:
    """The words of ``texts`` (lower-case, as spoken) that are one of ``keywords`` by :func:`stem` (a clip's
    hashtags -> the forms its captions say them in): what the captions emphasise as the clip's keywords."""
    stems = {stem(t) for k in keywords for t in tokens(k) if t not in STOPWORDS and len(t) > 2}
    return tuple(dict.fromkeys(t for x in texts for t in tokens(x) if t not in STOPWORDS and stem(t) in stems))


def _add(vectors: Sequence[dict[str, float]]) -> dict[str, float]:
    out: Counter[str] = Counter()
    for v in vectors:
        out.update(v)
    return dict(out)


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    dot = sum(w * b.get(t, 0.0) for t, w in a.items())
    na = math.sqrt(sum(w * w for w in a.values()))
    nb = math.sqrt(sum(w * w for w in b.values()))
    return dot / (na * nb) if na and nb else 0.0


def topic_segments(texts: Sequence[str], tfidf: TfIdf, block: int = 3, min_len: int = 3) -> list[int]:
    """Segment id per sentence, by lexical cohesion (TextTiling, Hearst 1997).

    At each gap between sentences, compare the vocabulary of the ``block`` sentences
    before and after; a gap whose cohesion dips deeply below its neighbouring peaks is a
    topic change. Segments shorter than ``min_len`` sentences are not split off.
    """
    n = len(texts)
    if n < 2 * min_len:
        return [0] * n
    vecs = [tfidf.vector(t) for t in texts]
    cohesion = [
        _cosine(_add(vecs[max(0, g - block + 1) : g + 1]), _add(vecs[g + 1 : g + 1 + block]))
        for g in range(n - 1)
    ]
    depth = []
    for g, c in enumerate(cohesion):
        left = max(cohesion[: g + 1])
        right = max(cohesion[g:])
        depth.append((left - c) + (right - c))
    mean = sum(depth) / len(depth)
    sd = math.sqrt(sum((d - mean) ** 2 for d in depth) / len(depth))
    cutoff = mean + sd / 2
    boundaries: list[int] = []
    for g in sorted(range(len(depth)), key=lambda g: -depth[g]):
        if depth[g] <= cutoff or depth[g] <= 0:
            break
        cut = g + 1  # the new segment starts at sentence g + 1
        edges = sorted([0, n, *boundaries, cut])
        if all(b - a >= min_len for a, b in zip(edges, edges[1:], strict=False)):
            boundaries.append(cut)
    seg, ids = 0, []
    for i in range(n):
        if i in boundaries:
            seg += 1
        ids.append(seg)
    return ids
