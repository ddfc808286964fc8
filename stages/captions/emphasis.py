"""Caption emphasis and emoji: which word of a group is its key word, and which groups get an emoji.

Both are pure and deterministic, chosen from the words alone (and the clip's keywords, what the moment
scorer ranked for the clip: ``keywords``, lower-case surface forms). ``captionEmphasis`` auto gives at
most one word per group the preset's accent colour and a stronger pop: the most *salient* one, scored by
:func:`word_salience` (numbers and amounts, the clip's keywords, capitalised names inside a sentence,
strong verbs; any other content word only for a preset that emphasises every group). ``captionEmoji``
puts the :data:`EMOJI_LEXICON` emoji of a group's word above that group, at most one every
:data:`EMOJI_EVERY_S`; the emoji font (``stages/fonts/NotoEmoji-Bold.ttf``) is subset to the lexicon.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace

from engine.types import SENTENCE_END
from stages.captions.layout import CaptionLayout, even_ceil, even_floor, pad_px
from stages.captions.style import CaptionGroup, CaptionStyle, font_info, is_keyword, load_font

EMOJI_FONT = "NotoEmoji-Bold.ttf"  # in FONTS_DIR: Noto Emoji (monochrome), subset to the lexicon
EMOJI_EVERY_S = 3.0  # at most one emoji starts within this many seconds

#: salience of each kind of word (the highest kind a word is counts; length breaks ties)
SCORE_NUMBER = 5.0  # 3, 40%, $200, 1.5k, "million"
SCORE_KEYWORD = 4.0  # one of the clip's keywords (the moment scorer's)
SCORE_NAME = 3.0  # Capitalised inside a sentence: a name, a product, a place
SCORE_VERB = 3.0  # a strong verb (STRONG_VERBS)
SCORE_CONTENT = 1.0  # any other content word (style.is_keyword)

_NUMBER_WORDS = frozenset("""three four five six seven eight nine ten twelve fifteen twenty thirty forty fifty hundred
    thousand million billion trillion percent double triple half""".split())
_PRONOUNS = frozenset({"i", "i'm", "i've", "i'll", "i'd", "ok", "okay"})
_CURRENCY = frozenset("$€£¥%")

#: verbs that carry a clip's punch (base forms; matched with light suffix stripping)
STRONG_VERBS = frozenset(
    """beat blow boost break build burn change crash crush destroy dominate double drop earn explode fail
    fight fire force grow hack hate kill launch lose love master multiply quit ruin save scale scream sell
    shock skyrocket smash solve spend steal stop struggle survive transform triple win wreck""".split()
)

#: curated keyword -> emoji (base forms; one code point each, in the bundled emoji font)
EMOJI_LEXICON: dict[str, str] = {
    # money and business
    "money": "💰", "cash": "💵", "dollar": "💵", "rich": "🤑", "pay": "💸", "paid": "💸", "cost": "💸",
    "price": "💲", "expensive": "💸", "cheap": "💲", "profit": "📈", "revenue": "📈", "sale": "📈",
    "growth": "🚀", "invest": "📈", "stock": "📈", "market": "📈", "bank": "🏦", "coin": "🪙",
    "crypto": "🪙", "bitcoin": "🪙", "business": "💼", "job": "💼", "career": "💼", "office": "🏢",
    "company": "🏢", "deal": "🤝", "partner": "🤝", "team": "🤝", "friend": "🤝", "buy": "🛒",
    "shop": "🛒", "shopping": "🛒", "diamond": "💎", "gold": "🥇", "chart": "📊", "data": "📊",
    "statistic": "📊", "plan": "📝", "note": "📝", "email": "📧", "mail": "📧", "meeting": "📅",
    "calendar": "📅", "deadline": "⏰",
    # energy and success
    "fire": "🔥", "hot": "🔥", "lit": "🔥", "rocket": "🚀", "launch": "🚀", "grow": "🌱",
    "plant": "🌱", "fast": "⚡", "speed": "⚡", "energy": "⚡", "electric": "⚡", "power": "💪",
    "strong": "💪", "strength": "💪", "muscle": "💪", "win": "🏆", "winner": "🏆", "champion": "🏆",
    "trophy": "🏆", "goal": "🎯", "target": "🎯", "focus": "🎯", "king": "👑", "queen": "👑",
    "crown": "👑", "perfect": "💯", "hundred": "💯", "star": "⭐", "magic": "✨", "beautiful": "✨",
    "lucky": "🍀", "luck": "🍀", "boom": "💥", "explode": "💥", "crash": "💥", "bomb": "💣",
    # mind and feelings
    "love": "❤", "heart": "❤", "idea": "💡", "light": "💡", "brain": "🧠", "smart": "🧠",
    "genius": "🧠", "learn": "📚", "book": "📚", "read": "📖", "study": "📚", "student": "🎓",
    "college": "🎓", "university": "🎓", "graduate": "🎓", "happy": "😄", "laugh": "😂",
    "funny": "😂", "joke": "😂", "smile": "😊", "sad": "😢", "cry": "😭", "tear": "😭",
    "angry": "😡", "mad": "😡", "hate": "😠", "scared": "😱", "fear": "😱", "shock": "😱",
    "scream": "😱", "crazy": "🤯", "insane": "🤯", "wow": "😮", "cool": "😎",
    "secret": "🤫", "quiet": "🤫", "wonder": "🤔", "confused": "🤔", "question": "❓",
    "dream": "💭", "hope": "🤞", "future": "🔮", "party": "🎉", "celebrate": "🎉", "birthday": "🎂",
    "cake": "🎂", "gift": "🎁", "kiss": "💋", "pray": "🙏", "thank": "🙏", "thanks": "🙏",
    "please": "🙏", "hello": "👋", "bye": "👋", "clap": "👏", "applause": "👏", "agree": "👍",
    "great": "👍", "awesome": "👍", "bad": "👎", "devil": "😈", "angel": "😇", "ghost": "👻",
    "dead": "💀", "skull": "💀", "sleep": "😴", "tired": "😴", "sick": "🤒",
    # warnings and verdicts
    "warning": "⚠", "danger": "⚠", "risk": "⚠", "stop": "🛑", "correct": "✅", "check": "✅",
    "wrong": "❌", "mistake": "❌", "fail": "❌", "failure": "❌", "problem": "🧩", "puzzle": "🧩",
    "solution": "🧩", "search": "🔍", "find": "🔍", "key": "🔑", "lock": "🔒", "security": "🔒",
    "safe": "🔒",
    # time
    "time": "⏰", "clock": "⏰", "hour": "⌛", "minute": "⏱", "late": "⏰",
    "history": "📜", "night": "🌙", "moon": "🌙",
    # things and places
    "music": "🎵", "song": "🎵", "sing": "🎤", "guitar": "🎸", "piano": "🎹", "dance": "💃",
    "video": "🎥", "camera": "📷", "photo": "📷", "film": "🎬", "movie": "🎬", "art": "🎨",
    "paint": "🎨", "design": "🎨", "phone": "📱", "call": "📞", "computer": "💻", "code": "💻",
    "laptop": "💻", "software": "💻", "internet": "🌐", "website": "🌐", "robot": "🤖", "ai": "🤖",
    "science": "🔬", "research": "🔬", "experiment": "🧪", "tool": "🔧", "fix": "🔧", "build": "🔨",
    "battery": "🔋", "world": "🌍", "earth": "🌍", "travel": "✈", "flight": "✈", "plane": "✈",
    "car": "🚗", "drive": "🚗", "home": "🏠", "house": "🏠", "news": "📰", "message": "💬",
    "chat": "💬", "talk": "💬", "listen": "👂", "eye": "👀", "watch": "👀", "game": "🎮",
    "football": "⚽", "soccer": "⚽", "basketball": "🏀", "run": "🏃", "race": "🏁", "finish": "🏁",
    "ring": "💍", "wedding": "💍", "baby": "👶", "family": "👪", "dog": "🐶", "cat": "🐱",
    "sun": "☀", "rain": "🌧", "snow": "❄", "cold": "❄", "ocean": "🌊", "wave": "🌊", "tree": "🌳",
    "flower": "🌸", "food": "🍔", "eat": "🍔", "burger": "🍔", "hungry": "🍔", "pizza": "🍕",
    "coffee": "☕", "water": "💧", "beer": "🍺", "wine": "🍷", "apple": "🍎", "doctor": "🩺",
    "health": "🩺", "medicine": "💊",
}


def _core(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum() or c == "'").strip("'")


def base_forms(word: str) -> list[str]:
    """``word`` (lower-case letters) and the base forms light suffix stripping gives: plurals, -ing, -ed,
    -'s, a doubled final consonant (running -> run), a dropped final e (loved -> love)."""
    w = word.removesuffix("'s")
    out = [w]
    for suffix in ("ies", "es", "s", "ing", "ed", "er", "ly"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 2:
            stem = w[: -len(suffix)]
            out += [stem, stem + "e"] + ([stem + "y"] if suffix == "ies" else [])
            if len(stem) >= 3 and stem[-1] == stem[-2]:
                out.append(stem[:-1])
    return list(dict.fromkeys(out))


def emoji_for(text: str) -> str | None:
    """The lexicon's emoji for a word as spoken (``"Money,"``, ``"rockets"``, ``"loved"``), or None."""
    core = _core(text)
    for form in base_forms(core) if core else ():
        if form in EMOJI_LEXICON:
            return EMOJI_LEXICON[form]
    return None


def word_salience(text: str, sentence_start: bool, keywords: Collection[str] = ()) -> float:
    """How much a word stands out (0 = never emphasised): the highest of its kinds (numbers/amounts,
    the clip's keywords, capitalised inside a sentence, a strong verb, a content word), plus a length
    tie-break below 0.1. ``sentence_start``: the word opens a sentence (its capital says nothing)."""
    raw = text.strip()
    core = _core(raw)
    if not core:
        return 0.0
    score = 0.0
    if any(c.isdigit() for c in core) or any(c in _CURRENCY for c in raw) or core in _NUMBER_WORDS:
        score = SCORE_NUMBER
    elif core in keywords:
        score = SCORE_KEYWORD
    elif raw[:1].isupper() and not sentence_start and core not in _PRONOUNS and not raw.isupper():
        score = SCORE_NAME
    elif any(f in STRONG_VERBS for f in base_forms(core)):
        score = SCORE_VERB
    elif is_keyword(raw):
        score = SCORE_CONTENT
    return score + min(len(core), 12) / 200 if score else 0.0


def emphasised_words(groups: Sequence[CaptionGroup], keywords: Collection[str] = (),
                     min_score: float = SCORE_VERB) -> list[int | None]:
    """Per group, the index of its emphasised word (the most salient, the earliest of equals) or None
    when no word reaches ``min_score``."""
    keys = {k.lower() for k in keywords}
    out: list[int | None] = []
    prev = ""
    for g in groups:
        best, best_score = None, 0.0
        for i, w in enumerate(g.words):
            opens = not prev or prev.rstrip().endswith(SENTENCE_END)
            s = word_salience(w.text, opens, keys)
            if s >= min_score and s > best_score:
                best, best_score = i, s
            prev = w.text
        out.append(best)
    return out


def group_emoji(groups: Sequence[CaptionGroup], emphasised: Sequence[int | None] = (),
                every_s: float = EMOJI_EVERY_S) -> list[str | None]:
    """Per group, the emoji shown above it or None: the lexicon emoji of its emphasised word, else of its
    first word that has one; a group gets one only ``every_s`` seconds or more after the last one began."""
    out: list[str | None] = []
    last = -1e9
    for gi, g in enumerate(groups):
        order = list(range(len(g.words)))
        em = emphasised[gi] if gi < len(emphasised) else None
        if em is not None:
            order.remove(em)
            order.insert(0, em)
        pick = next((e for e in (emoji_for(g.words[i].text) for i in order) if e), None)
        if pick is not None and g.start - last >= every_s - 1e-9:
            out.append(pick)
            last = g.start
        else:
            out.append(None)
    return out


# -- the emoji's place ------------------------------------------------------------------------

EMOJI_SIZE = 1.35  # the emoji's em as a multiple of its group's
EMOJI_GAP_EM = 0.12  # between the emoji's bottom and the top of the group's (popped) capitals


def emoji_style(style: CaptionStyle) -> CaptionStyle:
    """The group's style for its emoji: the emoji font, the same outline and shadow, no pop or emphasis."""
    return replace(style, font_file=EMOJI_FONT, pop_scale=1.0, emphasis=False, emoji=False, uppercase=False,
                   strip_punct=False, line_pitch_em=1.0)


def emoji_layout(style: CaptionStyle, lay: CaptionLayout, char: str, out_w: int) -> CaptionLayout:
    """Where ``char`` sits above the group laid out as ``lay``: centred, its glyph's bottom
    :data:`EMOJI_GAP_EM` above the tallest the group's first line gets (its popped capitals and outline)."""
    es = emoji_style(style)
    em = max(8, round(lay.em * EMOJI_SIZE))
    fi = font_info(style.font_file)
    first = lay.y + lay.baselines[0]
    group_top = first - fi.cap_em * lay.em * (style.max_pop + 1) / 2 - style.outline_em * lay.em * style.max_pop
    left, top, right, bottom = load_font(EMOJI_FONT, em).getbbox(char, anchor="ls")
    baseline = group_top - EMOJI_GAP_EM * lay.em - bottom
    pad = pad_px(es, em)
    width = right - left + 2 * pad
    x, y = even_floor((out_w - width) / 2), even_floor(baseline + top - pad)
    return CaptionLayout(em, ((0,),), x, y, even_ceil(width), even_ceil(baseline + bottom + pad - y),
                         (baseline - y,))
