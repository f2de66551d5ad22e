#!/usr/bin/env python3
"""Reference data for the tokenizer tests, produced by the `tokenizers` library (and transformers for chat).

Builds the test corpus, trains small byte-level BPE tokenizers with DeepSeek-LLM-style pre-tokenizers,
and writes, for every tokenizer, the ids `tokenizers` produces for every corpus item plus decodes.
Nothing here is produced by inferd's own code.

Usage: tokenizer_reference.py --out DIR --v3-dir PATH [--skip-chat]
Output (all under DIR):
  corpus.json            [{"name": str, "hex": utf-8 bytes as hex}]; some items are invalid UTF-8
  manifest.json          {"tokenizers": [{"name", "dir", "roundtrip"}], "corpus_items": n}
  expected_<name>.json   per item: ids (null for invalid UTF-8), lossy_ids, ids_special (add_special_tokens
                         as transformers would), ids_split_special, decode / decode_skip (hex), prefixes
                         [[k, hex of decode(ids[:k])]]; plus "decode_cases" of random id sequences
  chat.json              [{"messages", "add_generation_prompt", "expected"}] (DeepSeek-V3 template)
"""
import argparse
import json
import os
import random
import sys

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

V3_SPECIAL_SAMPLES = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>",
                      "<｜tool▁sep｜>", "<｜tool▁calls▁begin｜>", "<｜fim▁hole｜>", "<｜▁pad▁｜>", "<think>", "</think>"]
TRAINED_ADDED = ["<|bos|>", "<|eos|>", "<tool>", "</tool>", "[WORD]", "Ｎｏｒｍ", "<|user|>", "<br>"]

ENGLISH = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello, world! How's it going? I'm fine; you're great. We'll see, they'd say.",
    "Inference servers batch requests continuously to keep the GPU busy, and they stream tokens back.",
    "Don't split contractions wrongly: isn't, aren't, wouldn't've, y'all, O'Neill's.",
    "E-mail me at john.doe@example.com or visit https://example.org/path?q=1&r=two#frag.",
    "Mr. Smith paid $1,234.56 on 2024-03-15 at 09:30 AM (UTC+8) -- a 12.5% discount!",
    "CamelCaseWords and snake_case_words and SCREAMING_CASE and kebab-case-words.",
    "\"Quoted text,\" she said, 'and single quotes' -- plus an ellipsis...",
]
CHINESE = [
    "【限时特惠】全新升级款无线蓝牙耳机，超长续航48小时，支持快充！",
    "本店所有商品均为正品行货，支持七天无理由退换货，全国包邮。",
    "这款智能手表采用1.43英寸AMOLED高清屏幕，IP68级防水，适合游泳、跑步等多种运动场景。",
    "精选新疆长绒棉，亲肤透气，柔软舒适；尺码：S/M/L/XL，颜色可选：米白、浅灰、雾霾蓝。",
    "深度求索（DeepSeek）发布了新一代大语言模型，推理速度提升了3倍。",
    "买二送一！满299元减50元，活动时间：2024年11月11日0点至23点59分。",
]
JAPANESE = ["東京は日本の首都です。今日はいい天気ですね！", "カタカナとひらがなと漢字を混ぜた文章：コンピューターで処理する。",
            "ｶﾀｶﾅ半角もあります。〜「こんにちは」と言った。"]
KOREAN = ["안녕하세요, 만나서 반갑습니다. 오늘 날씨가 좋네요!", "한국어 형태소 분석은 어렵습니다 — 띄어쓰기도 중요해요."]
CYRILLIC = ["Привет, мир! Как дела? Всё хорошо.", "Съешь же ещё этих мягких французских булок, да выпей чаю.",
            "Українська мова: ґанок, їжак, єнот."]
ARABIC = ["مرحبا بالعالم! كيف حالك اليوم؟", "اللغة العربية تُكتب من اليمين إلى اليسار، والأرقام ١٢٣٤٥ أيضاً.",
          "שלום עולם, עברית גם כן."]
CODE = [
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "#include <vector>\nint main() {\n\tstd::vector<int> v{1, 2, 3};\n\tfor (auto& x : v) x *= 2;\n\treturn 0;\n}\n",
    "const f = async (a, b) => { await sleep(100); return a ?? b; };\n// TODO: fix\n",
    '{"name": "inferd", "version": "0.1.0", "deps": ["pcre2", "icu"], "ok": true, "n": null}',
    "<html>\n  <body class=\"main\">\n    <p>Hello &amp; welcome</p>\n  </body>\n</html>\n",
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%smith%' ORDER BY id DESC;",
    "x = [i**2 for i in range(10) if i % 2 == 0]  # squares\r\n\tprint(f\"{x!r:>10}\")\r\n",
    "fn main() -> Result<(), Box<dyn Error>> {\n    let s: &str = \"héllo\";\n    println!(\"{s}\");\n    Ok(())\n}",
]
EMOJI = ["I love it 👍🏽👍🏿!", "Family: 👨‍👩‍👧‍👦 and flags 🇯🇵🇺🇸🇨🇳", "🎉🎊✨🔥💯 party time 🥳",
         "Math letters 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐁𝐨𝐥𝐝 𝟙𝟚𝟛", "CJK ext B: 𠀀𠀁𠀂 𪜀 and Gothic 𐌰𐌱𐌲 and 𝄞 music",
         "Keycaps 1️⃣2️⃣#️⃣ and variation ❤️ vs ❤", "☃️ snowman ☕ coffee ⌚ watch"]
MATH = ["∀x∈ℝ: x²≥0", "∑_{i=1}^{n} i = n(n+1)/2", "√2 ≈ 1.41421356…", "∫₀^∞ e^{-x²} dx = √π/2",
        "α+β≠γ, ≤≥≪≫⊂⊆∪∩, ∂f/∂x, ∇·E = ρ/ε₀", "f(x) = 3x³ − 2x² + x − 7 ⇒ f′(x) = 9x² − 4x + 1", "½ + ¼ = ¾; ⅓ ⅔ ⅛"]


def numbers(rng):
    out = []
    for n in range(1, 61):
        digits = "".join(rng.choice("0123456789") for _ in range(n))
        out.append(digits)
        out.append(" " + digits + " items")
        out.append("x" + digits + "y")
    out += ["3.14159265358979", "-42", "+1 (555) 123-4567", "1,000,000", "v1.2.3-rc.4", "0x1F2E3D", "1e-10",
            "１２３４５６７８９０", "٣٤٥٦", "²³¹", "Ⅻ ⅻ", "①②③", "१२३४", "1st 2nd 3rd 4th", "12:30:45.678",
            "2024/01/02", "007", "00000000001", "9" * 100]
    return out


def whitespace():
    out = []
    for n in range(1, 41):
        out.append(" " * n)
        out.append("a" + " " * n + "b")
        out.append("word" + " " * n)
    out += ["\t", "\t\t\tindented", "a\tb\tc", "\r\n", "line1\r\nline2\r\n", "\n\n\n", "a\n\nb\n\n\nc",
            " \t \r\n \n x", "\r\r\n\n\r", "  \n  \n  ", "\u3000全角空格\u3000", "nbsp\u00a0here", "line\u2028sep",
            "para\u2029sep", "\u0085nel", "zero\u200bwidth", "\v\f", "trailing   ", "   leading", "\n", " ", ""]
    return out


def special_items(specials):
    out = []
    for s in specials:
        out += [s, "hello" + s + "world", " " + s + " ", "  " + s + "  x", s + s, "a " + s + "\n" + s + "b",
                s[:-1], s[1:], "word" + s, s + "word", "<<" + s + ">>"]
    out += ["<｜User｜>Hi there<｜Assistant｜>Hello!<｜end▁of▁sentence｜>", "<|User|> ascii lookalike",
            "<｜User", "｜User｜>", "<｜<｜User｜>｜>", "text [WORD] text", "text[WORD]text", "x [WORD]", "[WORD]",
            "a <tool>  b  </tool>  c", "Norm Ｎｏｒｍ ＮＯＲＭ", "<br><br> <br>"]
    return out


def fuzz(rng, count):
    alphabet = (list("abcXYZ019 _-.,;:!?'\"()[]{}<>|/\\@#$%^&*+=~`") + [" ", "  ", "\t", "\n", "\r\n", "\r"] +
                list("中文字国人日本語ひらがなカタカナ한국어Привет") + list("é́ñüßøØŁ") + ["\u0301", "\u200d", "\u00a0"] +
                ["😀", "👍🏽", "🇯🇵", "𝔘", "𠀀", "½", "²", "٣", "…", "—", "“", "”", "【", "】", "，", "。", "｜", "▁"] +
                ["<｜User｜>", "<｜end▁of▁sentence｜>", "<|bos|>", "[WORD]", "<tool>", "Ｎｏｒｍ", "<think>"])
    out = []
    for _ in range(count):
        n = rng.randint(0, 120)
        out.append("".join(rng.choice(alphabet) for _ in range(n)))
    return out


def codepoint_chunks():
    ranges = [(0x0, 0xD800), (0xE000, 0x10000), (0x10000, 0x10400), (0x1D400, 0x1D800), (0x1F000, 0x1FB00),
              (0x20000, 0x20200), (0x2F800, 0x2FA20), (0x30000, 0x30100), (0xE0000, 0xE01F0), (0xF0000, 0xF0100),
              (0x10FF00, 0x110000)]
    out = []
    for lo, hi in ranges:
        for start in range(lo, hi, 1024):
            cps = [chr(c) for c in range(start, min(hi, start + 1024))]
            out.append(("cp_%x" % start, "".join(cps)))
            out.append(("cpsp_%x" % start, " ".join(cps)))
    return out


def build_corpus(seed=1234):
    """Returns [(name, bytes)]. Deterministic."""
    rng = random.Random(seed)
    items = []

    def add(group, texts):
        for i, t in enumerate(texts):
            items.append(("%s_%d" % (group, i), t.encode("utf-8") if isinstance(t, str) else t))

    add("english", ENGLISH)
    add("chinese", CHINESE)
    add("japanese", JAPANESE)
    add("korean", KOREAN)
    add("cyrillic", CYRILLIC)
    add("arabic", ARABIC)
    add("code", CODE)
    add("emoji", EMOJI)
    add("math", MATH)
    add("numbers", numbers(rng))
    add("whitespace", whitespace())
    add("special", special_items(V3_SPECIAL_SAMPLES + TRAINED_ADDED))
    add("fuzz", fuzz(rng, 400))
    for name, text in codepoint_chunks():
        items.append((name, text.encode("utf-8")))
    # Mixed paragraphs and long documents.
    pool = ENGLISH + CHINESE + JAPANESE + KOREAN + CYRILLIC + ARABIC + CODE + EMOJI + MATH
    mixed = []
    for _ in range(60):
        mixed.append(rng.choice(["\n", " ", "\n\n", "\t", ""]).join(rng.choice(pool) for _ in range(rng.randint(2, 8))))
    add("mixed", mixed)
    docs = []
    for size in (20000, 60000, 120000):
        parts, total = [], 0
        while total < size:
            p = rng.choice(pool + mixed)
            parts.append(p)
            total += len(p)
        docs.append(rng.choice(["\n\n", "\n", " "]).join(parts))
    docs.append("中文长段落没有标点" * 3000)   # one very long CJK run (a single pre-token)
    docs.append(" " * 5000 + "x" + "\n" * 3000)
    docs.append("a" * 20000)
    add("long", docs)
    invalid = [b"abc\xff", b"\xc3\x28", b"hello \xe4\xbd", b"\x80\x80 continuation", b"\xc0\xaf overlong",
               b"\xed\xa0\x80 surrogate", b"\xf4\x90\x80\x80 too big", b"\xf0\x9f\x98 cut emoji \xf0\x9f\x98\x80",
               "正常文本".encode() + b"\xfe\xfe" + "更多".encode(), b"\xe2\x82", b"\xff", b"a\xc2"]
    add("invalid", invalid)
    return items


def trained_tokenizers(corpus, out_dir):
    """Trains byte-level BPE tokenizers with DeepSeek-LLM-style pre-tokenizers. Returns [(name, dir, roundtrip)]."""
    train_text = [b.decode("utf-8") for n, b in corpus if not n.startswith(("invalid", "long", "cp"))]
    train_text = train_text * 3 + [b.decode("utf-8") for n, b in corpus if n.startswith("long")][:2]
    result = []

    def added_tokens(tok):
        tok.add_special_tokens(["<|bos|>", "<|eos|>"])
        tok.add_tokens([
            tokenizers_added("<tool>", lstrip=True), tokenizers_added("</tool>", rstrip=True),
            tokenizers_added("[WORD]", single_word=True), tokenizers_added("Ｎｏｒｍ", normalized=True),
            tokenizers_added("<|user|>", normalized=False), tokenizers_added("<br>", lstrip=True, rstrip=True)])

    def save(tok, name, config, roundtrip):
        d = os.path.join(out_dir, "tokenizers", name)
        os.makedirs(d, exist_ok=True)
        tok.save(os.path.join(d, "tokenizer.json"))
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump(config, f, ensure_ascii=False, indent=1)
        result.append((name, d, roundtrip))

    # DeepSeek-LLM style: newline isolation, letter runs, punctuation runs, trailing space, CJK runs, digits.
    llm = Tokenizer(models.BPE())
    llm.normalizer = normalizers.Sequence([])
    llm.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex("[\r\n]"), "isolated"),
        pre_tokenizers.Split(Regex("\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u1f7dᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-\u1fd3ῖ-\u1fdbῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨℬ-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+"), "isolated"),
        pre_tokenizers.Split(Regex("\\s?[!-/:-~！-／：-～‘-‟　-。]+"), "isolated"),
        pre_tokenizers.Split(Regex("\\s+$"), "isolated"),
        pre_tokenizers.Split(Regex("[一-龥ࠀ-一가-퟿]+"), "isolated"),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    llm.decoder = decoders.ByteLevel()
    llm.train_from_iterator(train_text, trainers.BpeTrainer(
        vocab_size=4000, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    added_tokens(llm)
    save(llm, "llm_style", {"add_bos_token": True, "add_eos_token": False, "bos_token": "<|bos|>",
                            "eos_token": {"content": "<|eos|>"}, "tokenizer_class": "LlamaTokenizerFast"}, True)

    # Coder style with NFKC and every split behaviour; ByteLevel with prefix space and its own regex.
    coder = Tokenizer(models.BPE())
    coder.normalizer = normalizers.Sequence([normalizers.NFKC()])
    coder.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex("[\r\n]+"), "contiguous"),
        pre_tokenizers.Split(Regex("\\p{N}{1,3}"), "isolated"),
        pre_tokenizers.Split(Regex("[一-龥぀-ゟ゠-ヿ]+"), "merged_with_previous"),
        pre_tokenizers.Split("--", "merged_with_next"),
        pre_tokenizers.Split(Regex("\\s+(?!\\S)"), "isolated", invert=True),
        pre_tokenizers.Digits(individual_digits=False),
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True),
    ])
    coder.decoder = decoders.ByteLevel()
    coder.train_from_iterator(train_text, trainers.BpeTrainer(
        vocab_size=3000, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    added_tokens(coder)
    save(coder, "coder_style", {"add_bos_token": False, "bos_token": "<|bos|>", "eos_token": "<|eos|>",
                                "tokenizer_class": "LlamaTokenizerFast"}, False)

    # Removed / inverted splits, NFC, BOS/EOS from the post-processor (no add_bos_token in the config).
    rem = Tokenizer(models.BPE())
    rem.normalizer = normalizers.NFC()
    rem.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex("[ \t]+"), "removed"),
        pre_tokenizers.Split(Regex("\\p{L}+"), "isolated", invert=True),
        pre_tokenizers.Split(Regex("\\p{P}"), "contiguous"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    rem.decoder = decoders.ByteLevel()
    rem.train_from_iterator(train_text, trainers.BpeTrainer(
        vocab_size=2000, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    added_tokens(rem)
    rem.post_processor = processors.TemplateProcessing(
        single="<|bos|> $A <|eos|>", special_tokens=[("<|bos|>", rem.token_to_id("<|bos|>")),
                                                     ("<|eos|>", rem.token_to_id("<|eos|>"))])
    save(rem, "removed_style", {"bos_token": "<|bos|>", "eos_token": "<|eos|>",
                                "tokenizer_class": "PreTrainedTokenizerFast"}, False)

    # Character-level BPE with byte_fallback and a fused unk (no ByteLevel; decoder null).
    fb = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    fb.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(" ", "merged_with_next"),
                                                pre_tokenizers.Digits(individual_digits=True)])
    fb.train_from_iterator(train_text, trainers.BpeTrainer(
        vocab_size=1500, show_progress=False, limit_alphabet=120, special_tokens=["<unk>"]))
    spec = json.loads(fb.to_str())
    vocab = spec["model"]["vocab"]
    for b in range(0x00, 0xC0):  # bytes >= 0xC0 missing: some characters fall back to unk instead
        vocab.setdefault("<0x%02X>" % b, len(vocab))
    spec["model"]["byte_fallback"] = True
    fb = Tokenizer.from_str(json.dumps(spec))
    added_tokens(fb)
    save(fb, "fallback_style", {"add_bos_token": False, "tokenizer_class": "PreTrainedTokenizerFast"}, False)
    return result


def tokenizers_added(content, **kw):
    from tokenizers import AddedToken
    kw.setdefault("normalized", True)
    return AddedToken(content, **kw)


def expected_for(tok, corpus, cfg, rng):
    add_bos = cfg.get("add_bos_token")
    bos = cfg.get("bos_token")
    bos = bos.get("content") if isinstance(bos, dict) else bos
    eos = cfg.get("eos_token")
    eos = eos.get("content") if isinstance(eos, dict) else eos
    use_flags = "add_bos_token" in cfg or "add_eos_token" in cfg or cfg.get("tokenizer_class", "").startswith("Llama")
    items = []
    for name, raw in corpus:
        e = {}
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is None:
            e["ids"] = None
            e["lossy_ids"] = tok.encode(raw.decode("utf-8", errors="replace"), add_special_tokens=False).ids
            items.append(e)
            continue
        ids = tok.encode(text, add_special_tokens=False).ids
        e["ids"] = ids
        if use_flags:
            # What transformers' Llama tokenizers do with add_bos_token / add_eos_token.
            pre = [tok.token_to_id(bos)] if cfg.get("add_bos_token", True) and bos else []
            post = [tok.token_to_id(eos)] if cfg.get("add_eos_token", False) and eos else []
            e["ids_special"] = pre + ids + post
        else:
            e["ids_special"] = tok.encode(text, add_special_tokens=True).ids
        tok.encode_special_tokens = True
        e["ids_split_special"] = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = False
        e["decode"] = tok.decode(ids, skip_special_tokens=False).encode("utf-8").hex()
        e["decode_skip"] = tok.decode(ids, skip_special_tokens=True).encode("utf-8").hex()
        ks = sorted(set([rng.randint(0, len(ids)) for _ in range(4)] + [len(ids) // 2, max(0, len(ids) - 1)]))
        e["prefixes"] = [[k, tok.decode(ids[:k], skip_special_tokens=True).encode("utf-8").hex()] for k in ks]
        items.append(e)
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    cases = []
    for _ in range(300):
        ids = [rng.randrange(vocab_size) for _ in range(rng.randint(1, 12))]
        cases.append({"ids": ids, "decode": tok.decode(ids, skip_special_tokens=False).encode("utf-8").hex(),
                      "decode_skip": tok.decode(ids, skip_special_tokens=True).encode("utf-8").hex()})
    return {"items": items, "decode_cases": cases, "add_bos": add_bos}


def chat_cases(v3_dir, rng):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(v3_dir)
    contents = ["Hello!", "你好，请介绍一下你自己。", "Line one\nLine two\n\n  indented", "", "   ",
                "Use <｜User｜> literally", "emoji 👍🏽 and math ∑", "{\"json\": [1, 2, 3]}", "Trailing newline\n"]
    cases = []
    for c in range(60):
        msgs = []
        for _ in range(rng.randint(0, 2)):
            msgs.append({"role": "system", "content": rng.choice(contents)})
        for _ in range(rng.randint(1, 5)):
            kind = rng.choice(["user", "user", "assistant", "tool_call", "tool", "other"])
            if kind == "tool_call":
                calls = [{"type": "function", "function": {"name": rng.choice(["get_weather", "search"]),
                                                           "arguments": rng.choice(['{"city": "北京"}', "{}"])}}
                         for _ in range(rng.randint(1, 3))]
                msgs.append({"role": "assistant", "content": None, "tool_calls": calls})
            elif kind == "other":
                msgs.append({"role": "developer", "content": rng.choice(contents)})
            else:
                msgs.append({"role": kind, "content": rng.choice(contents)})
        if rng.random() < 0.3:
            msgs.insert(rng.randint(0, len(msgs)), {"role": "system", "content": rng.choice(contents)})
        gen = bool(c % 2)
        expected = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)
        cases.append({"messages": msgs, "add_generation_prompt": gen, "expected": expected})
    return cases


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--v3-dir", required=True)
    ap.add_argument("--skip-chat", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    # Regenerate only when this script, the libraries or the V3 files change.
    import hashlib
    import tokenizers
    import transformers
    h = hashlib.sha256(open(__file__, "rb").read())
    h.update((tokenizers.__version__ + transformers.__version__).encode())
    for f in ("tokenizer.json", "tokenizer_config.json"):
        h.update(open(os.path.join(args.v3_dir, f), "rb").read())
    stamp = os.path.join(args.out, "stamp")
    if os.path.exists(stamp) and open(stamp).read() == h.hexdigest() and os.path.exists(
            os.path.join(args.out, "manifest.json")):
        print("reference data up to date in %s" % args.out)
        return 0
    if os.path.exists(stamp):
        os.remove(stamp)
    rng = random.Random(99)
    corpus = build_corpus()
    with open(os.path.join(args.out, "corpus.json"), "w") as f:
        json.dump([{"name": n, "hex": b.hex()} for n, b in corpus], f)
    toks = [("deepseek_v3", os.path.abspath(args.v3_dir), True)] + trained_tokenizers(corpus, args.out)
    for name, d, _ in toks:
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        with open(os.path.join(d, "tokenizer_config.json")) as f:
            cfg = json.load(f)
        with open(os.path.join(args.out, "expected_%s.json" % name), "w") as f:
            json.dump(expected_for(tok, corpus, cfg, rng), f)
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump({"tokenizers": [{"name": n, "dir": d, "roundtrip": r} for n, d, r in toks],
                   "corpus_items": len(corpus)}, f, indent=1)
    if not args.skip_chat:
        with open(os.path.join(args.out, "chat.json"), "w") as f:
            json.dump(chat_cases(args.v3_dir, rng), f, ensure_ascii=False)
    with open(stamp, "w") as f:
        f.write(h.hexdigest())
    print("reference data: %d corpus items, %d tokenizers -> %s" % (len(corpus), len(toks), args.out))


if __name__ == "__main__":
    sys.exit(main())
