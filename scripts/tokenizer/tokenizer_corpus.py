"""The hard corpus for the tokenizer fixtures: `corpus(rng)` yields (category, text) pairs.

Everything is written here or generated from a seeded `random.Random`, so the fixture regenerates
byte for byte without any download.
"""

EOT = "<|endoftext|>"

# MARK: - Hand-written material

PROSE = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello world",
    " Hello world",
    "It was the best of times, it was the worst of times.",
    "She said, \"I don't think we'll make it before noon.\"",
    "GPT-Neo is a transformer model designed using EleutherAI's replication of the GPT-3 architecture.",
    "In 1969, Apollo 11 landed on the Moon; Neil Armstrong's first words were recorded at 02:56 UTC.",
    "The price rose from $3.50 to $4.25 (an increase of 21.4%) in Q3 2023.",
    "Email me at someone@example.com or visit https://example.org/path?q=1&r=two#frag.",
    "Mr. and Mrs. Dursley, of number four, Privet Drive, were proud to say that they were perfectly normal.",
    "Wait... what?! No -- that can't be right; they'd've told us.",
    "The committee's report (pp. 12-14) recommends a 3-stage roll-out.",
    "Tokenization is the first step; decoding is the last.",
    "I'M NOT SHOUTING, YOU'RE SHOUTING! WE'LL SEE WHO'S RIGHT.",
    "Rock 'n' roll isn't dead -- it's just resting.",
    "\"Quotes,\" 'single quotes', and `backticks` all differ.",
    "A list:\n- first item\n- second item\n- third item\n",
    "Dear Sir or Madam,\n\nI am writing to complain.\n\nYours faithfully,\nA. Customer",
    "Numbers: 0, 1, 12, 123, 1234, 12345, 123456, 1234567, 3.14159, -42, +7, 1e-9, 0xFF.",
    "Time flies like an arrow; fruit flies like a banana.",
]

CODE = [
    "def add(a, b):\n\treturn a + b\n",
    "def f(x):\n    if x > 0:\n        return x\n    return -x\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}\n",
    "struct Point: Hashable {\n    var x: Int\n    var y: Int\n}\n",
    "{\n  \"name\": \"gptneo\",\n  \"version\": \"1.0.0\",\n  \"tags\": [\"a\", \"b\"]\n}",
    "#include <stdio.h>\r\nint main(void) {\r\n    printf(\"hi\\n\");\r\n    return 0;\r\n}\r\n",
    "x  =  1   # aligned\ny  =  22  # comment\nzzz = 333\n",
    "\t\tindented with tabs\n\t\t\tand more\n",
    "    \n    \n        \n",
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%son' ORDER BY id DESC;",
    "if (a && b || !c) { x <<= 2; y >>>= 1; z ??= w; }",
    "let closure = { [weak self] (value: Int) -> String in \"\\(value)\" }",
    "<div class=\"main\"><p>Hello &amp; welcome</p></div>",
    "$ ls -la /usr/local/bin | grep -v '^d' > out.txt 2>&1",
    "a=b;c=d;e=f\n\n\n\n\nend",
    "// TODO: fix this\n/* multi\n   line */\nint x = 0x1F; // hex\n",
    "import numpy as np\n\narr = np.zeros((3, 4), dtype=np.float32)\nprint(arr.shape)\n",
    "    return self._cache[key]  \n",
    "fn main() -> Result<(), Box<dyn Error>> {\n    Ok(())\n}",
    "key:\tvalue\nother:\t\tvalue2\n",
    "line1\r\nline2\r\n\r\nline4\r\n",
    "\r\n\r\n",
    "trailing spaces   \nand tabs\t\t\n",
    "mixed \t \t whitespace \t\n \n",
    "url = 'https://example.com/a_b-c.d?e=f%20g'",
]

MULTILINGUAL = [
    "Café, naïve, résumé, façade, jalapeño, Zürich, Øresund, Łódź, Ångström.",
    "Ça va? Très bien, merci! À bientôt.",
    "Straße, Größe, Fußgänger, Äpfel, Öl, Übermut.",
    "Ελληνικά: Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.",
    "Русский текст: Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Українська: Чуєш їх, доцю, га? Кумедна ж ти, прощайся без ґольфів!",
    "中文：我能吞下玻璃而不伤身体。",
    "日本語：私はガラスを食べられます。それは私を傷つけません。",
    "한국어: 나는 유리를 먹을 수 있어요. 그래도 아프지 않아요.",
    "العربية: أنا قادر على أكل الزجاج و هذا لا يؤلمني.",
    "עברית: אני יכול לאכול זכוכית וזה לא מזיק לי.",
    "हिन्दी: मैं काँच खा सकता हूँ और मुझे उससे कोई चोट नहीं पहुंचती.",
    "ไทย: ฉันกินกระจกได้ แต่มันไม่ทำให้ฉันเจ็บ",
    "Tiếng Việt: Tôi có thể ăn thủy tinh mà không hại gì.",
    "Türkçe: Cam yiyebilirim, bana zararı dokunmaz. İstanbul, ıığş.",
    "Polski: Mogę jeść szkło i mi nie szkodzi. Zażółć gęślą jaźń.",
    "Mixed: English, Ελληνικά, Русский, 中文, العربية in one line.",
    "数字123和字母abc混合，还有全角！？",
    "ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ　１２３",
    "Արմեներեն, ქართული, ᏣᎳᎩ, ᚠᛇᚻ᛫ᛒᛦᚦ",
    "Roman numerals Ⅻ and ⅷ, fractions ½ ¾ ⅞, superscripts x² y³, circled ① ②.",
    "Arabic-Indic digits ٠١٢٣٤٥٦٧٨٩ and Devanagari digits ०१२३४५६७८९.",
    "Math: ∀x∈ℝ, ∃y: x²+y² ≥ 0 ⇒ √(x²) = |x|; ∑ᵢ aᵢ ≠ ∏ⱼ bⱼ.",
    "Currency: €100, £50, ¥1000, ₹500, ₿0.5, ¢25.",
    "Ligatures ﬁ ﬂ ﬀ and old ſ, Ꝥ, ꜳ.",
]

EMOJI = [
    "I love pizza 🍕🍕🍕!",
    "😀x 👍🏽",
    "Family: 👨‍👩‍👧‍👦 and 👩‍❤️‍💋‍👨",
    "Skin tones: 👋🏻👋🏼👋🏽👋🏾👋🏿",
    "Flags: 🇺🇸🇬🇧🇯🇵🇫🇷 and 🏴󠁧󠁢󠁳󠁣󠁴󠁿",
    "Keycaps: 1️⃣ 2️⃣ #️⃣ *️⃣",
    "Professions: 👩🏽‍💻 👨🏿‍🚀 🧑‍🔬",
    "Hearts ❤️🧡💛💚💙💜🖤🤍🤎 and ❤",
    "🙂",
    " 🙂",
    "🙂🙂",
    "text🙂text",
    "emoji at end 🎉",
    "🏳️‍🌈 🏳️‍⚧️",
    "Old: ☺ ☹ ☃ ♥ ✓ ✗ ★",
]

COMBINING = [
    "e\u0301 a\u0300 o\u0302 n\u0303",
    "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA",
    "\u0301starts with a combining mark",
    "a\u0308\u0304 stacked",
    "cafe\u0301 vs caf\u00e9",
    "\u1100\u1161\u11a8 (conjoining jamo) vs \uac01",
    "q\u0307\u0323 and \u0915\u094d\u0937",
    "\u05e9\u05c1\u05b8\u05dc\u05d5\u05b9\u05dd",
    " \u0301",
    "'\u0301s",
]

ODD_UNICODE = [
    "replacement \ufffd char",
    "\ufffd",
    "\ufffd\ufffd\ufffd",
    "zero\u200bwidth\u200bspace",
    "\u200b",
    "zwj\u200dzwnj\u200c",
    "non-characters \ufdd0 \ufdef \ufffe \uffff \U0001fffe \U0010ffff",
    "private use \ue000 \uf8ff \U000f0000",
    "BOM \ufeff inside",
    "\ufeffBOM first",
    "controls \x00 \x01 \x07 \x1b[31m red \x1b[0m \x7f",
    "nul\x00in\x00middle",
    "no-break\u00a0space and\u202fnarrow and\u2007figure",
    "ideographic\u3000space",
    "line\u2028separator\u2029paragraph",
    "next line\x85here",
    "ogham\u1680space mongolian\u180evowel",
    "vertical\x0btab and form\x0cfeed",
    "file\x1cgroup\x1drecord\x1eunit\x1fseparators",
    "soft\u00adhyphen",
    "bidi \u202eoverride\u202c and \u2066isolate\u2069",
    "variation selectors \ufe0e\ufe0f \U000e0100",
    "tags \U000e0041\U000e0042",
    "math alphanumerics \U0001d400\U0001d41b\U0001d7ce",
    "unassigned \u0378 \U0002fffd",
    "assigned after HF's Unicode tables: a\u088fb \u0c5cx y\ua7cez \U00010940w 1\ua7f12",
    "surrogate-free astral \U00010348 \U0001f600 \U00020000",
    "\u00a0",
    " \u00a0 ",
    "\u3000\u3000x",
    "\t\u00a0\n",
]

CONTRACTION_ENDINGS = ["s", "t", "re", "ve", "m", "ll", "d"]

LONG_WORDS = [
    "a" * 3000,
    "supercalifragilisticexpialidocious" * 40,
    "Pneumonoultramicroscopicsilicovolcanoconiosis",
    "1234567890" * 200,
    "!?" * 500,
    "🙂" * 300,
    "中" * 800,
    " " * 1000 + "x",
    "\n" * 500,
    "ab" * 1500 + " " + "xy" * 1500,
    "Lorem" + "ipsum" * 300,
]

# MARK: - Generated "real text"

SUBJECTS = ["The engineer", "A small dog", "Our committee", "The old lighthouse keeper", "Maria", "They",
            "The government's new policy", "Nobody", "Every student in the class", "The river",
            "An unexpected letter", "My grandmother", "The server", "This model", "The city council"]
VERBS = ["noticed", "couldn't explain", "had forgotten", "will never accept", "quietly rebuilt",
         "argued about", "wrote down", "didn't expect", "measured", "celebrated", "ignored", "translated"]
OBJECTS = ["the strange noise in the attic", "a 42-page report", "the meaning of the word 'home'",
           "three hundred and twelve apples", "the results of the 2019 survey", "what we'd planned",
           "the sunrise over the harbour", "every single comma", "the price of bread", "a forgotten song",
           "the rules of chess", "the last train to Edinburgh", "its own reflection"]
TAILS = [".", "!", "?", "...", ", and then it rained.", " before dawn.", "; nobody knew why.",
         " -- or so they said.", " (again).", ", didn't they?", " in 1987.", " at 5:30 p.m."]
DIALOGUE = ["\"Where are you going?\" she asked.", "\"I'm not sure,\" he replied, \"but I'll know when I get there.\"",
            "'You've got to be kidding me,' said Tom.", "\"WE'RE LATE!\" shouted the conductor.",
            "\"It's fine. It's all fine.\"", "'Isn't it?'"]


def generated_prose(rng, count):
    lines = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.15:
            lines.append(rng.choice(DIALOGUE))
            continue
        sentences = []
        for _ in range(rng.randint(1, 4)):
            sentence = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}{rng.choice(TAILS)}"
            sentences.append(sentence)
        line = " ".join(sentences)
        if kind > 0.9:
            line = line.upper()
        elif kind > 0.85:
            line = "  " + line + "  "
        lines.append(line)
    return lines


# MARK: - Systematic whitespace and character-class combinations

def whitespace_combinations(rng):
    atoms = [" ", "  ", "\n", "\t", "\r\n", "a", "B", "!", "1", "'s", "é", "中", "🙂", "\u00a0"]
    texts = set()
    for first in atoms:
        for second in atoms:
            texts.add(first + second)
    while len(texts) < 420:
        texts.add("".join(rng.choice(atoms) for _ in range(rng.randint(3, 7))))
    return sorted(texts)


def fuzz(rng, count):
    pools = ["abcXYZ", "0123456789", " \t\n\r", "'\"!?.,;:-_()[]{}<>|/\\@#$%^&*+=~`", "éèüßøñçÅ",
             "αβγΔΩ", "абвЖЯ", "中文字日本語한국", "ابتث", "\u0301\u0308\u0323", "\u200b\u200d\ufeff\ufffd",
             "🙂🎉👍🏽", "\u00a0\u3000\u2028\x85", "²½Ⅻ٣"]
    texts = []
    for _ in range(count):
        length = rng.randint(1, 40)
        texts.append("".join(rng.choice(rng.choice(pools)) for _ in range(length)))
    return texts


def fuzz_code_points(rng, count):
    """Any scalar at all: random code points from every plane (assigned or not, no surrogates), mixed with
    the characters the pattern treats specially."""
    specials = [" ", " ", "'", "s", "\n", "\t", "a", "1", "!"]
    texts = []
    for _ in range(count):
        characters = []
        for _ in range(rng.randint(1, 30)):
            roll = rng.random()
            if roll < 0.3:
                characters.append(rng.choice(specials))
            else:
                plane_top = 0x10000 if roll < 0.75 else 0x110000
                code_point = rng.randrange(0x80, plane_top)
                while 0xD800 <= code_point <= 0xDFFF:
                    code_point = rng.randrange(0x80, plane_top)
                characters.append(chr(code_point))
        texts.append("".join(characters))
    return texts


def fuzz_pattern_edges(rng, count):
    """Short strings over the atoms where GPT-2's pattern has edges: contractions, one space before each
    class, whitespace runs before non-space, apostrophes inside punctuation."""
    atoms = ["'", "'s", "'S", "'t", "'re", "'ve", "'m", "'ll", "'d", "'x", " ", "  ", "\t", "\n", "\r\n", "\u00a0",
             "a", "Z", "é", "1", "½", "!", "?!", "-", "_", "中", "🙂", "\u0301", "\u200b", EOT]
    return ["".join(rng.choice(atoms) for _ in range(rng.randint(2, 12))) for _ in range(count)]


# MARK: - The corpus

def corpus(rng):
    for text in PROSE:
        yield "prose", text
    for text in CODE:
        yield "code", text
    for text in whitespace_combinations(rng):
        yield "whitespace", text
    for ending in CONTRACTION_ENDINGS:
        for form in [ending, ending.upper(), ending.capitalize()]:
            yield "contraction", f"it'{form}"
            yield "contraction", f"'{form}"
            yield "contraction", f" '{form} x"
            yield "contraction", f"x''{form}!'{form}"
    for text in ["I'm", "I'M", "you're", "YOU'RE", "we've", "WE'VE", "she'll", "SHE'LL", "he'd", "HE'D",
                 "don't", "DON'T", "it's", "IT'S", "y'all", "rock'n'roll", "'tis", "o'clock", "'sx", "'", "''",
                 "it\u2019s (curly)", "l'été", "'s's's", "can't've", "'S'T'RE'VE'M'LL'D"]:
        yield "contraction", text
    for text in ["abc123", "123abc", "a1b2c3", "x 1 y 2", "3.14abc", "v2.0.1-beta", "1st 2nd 3rd 4th",
                 "H2O CO2", "COVID-19", "ipv6 ::1", "2023-01-15T10:30:00Z", "+1 (555) 123-4567",
                 "1,000,000", "10^9", "0b1010", "ⅫX", "٣abc", "a²", "１２３ａｂｃ", "  42  ", " 7", "12 34 56"]:
        yield "digits", text
    for text in ["!!!", "?!?!", "...", "---", "***", "!!! ???", "(((nested)))", "a,b.c;d:e", "«quotes»",
                 "“curly” ‘quotes’", "—em–en‐", "#@$%^&*", "!!\n!!", " !", "  !", "! ", "!\t!", "→←↑↓",
                 "~~~~~~~~", "<<<>>>", "/* */", "''''", "\"\"\"", "=" * 40, "-" * 80]:
        yield "punctuation", text
    for text in MULTILINGUAL:
        yield "multilingual", text
    for text in EMOJI:
        yield "emoji", text
    for text in COMBINING:
        yield "combining", text
    for text in ODD_UNICODE:
        yield "odd-unicode", text
    for text in [EOT, f"a{EOT}b", f"Hello {EOT} world", f"{EOT}{EOT}", f" {EOT} ", f"\n{EOT}\n",
                 f"end.{EOT}", f"<|endoftext|", f"<|endoftext|>>", f"<<|endoftext|>", f"{EOT}The next document",
                 f"x {EOT}  y", f"<|ENDOFTEXT|>", f"<|endoftext|>'s", f"中{EOT}文"]:
        yield "special", text
    for text in LONG_WORDS:
        yield "long", text
    for text in generated_prose(rng, 320):
        yield "real-text", text
    yield "real-text", "\n".join(generated_prose(rng, 40))
    for text in fuzz(rng, 120):
        yield "fuzz", text
    for text in fuzz_code_points(rng, 200):
        yield "fuzz-code-points", text
    for text in fuzz_pattern_edges(rng, 250):
        yield "fuzz-pattern", text
    yield "edge", ""
    yield "edge", " "
    yield "edge", "\n"
