"""The toy world's text side: a tiny T5 tokenizer over the toy world's words and a tiny random T5 / UMT5 encoder.

The bundled toy-world generator is a stock `WanPipeline`; its prompts go through these two (built locally, no Hub
download), and `hybridgen train-generator` builds them from its seed. A random encoder that stays frozen still
gives each caption its own embedding sequence, which is all a tiny text-to-video model needs.
"""

from __future__ import annotations

import struct

import torch
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import Unigram
from transformers import T5Config, T5EncoderModel, T5TokenizerFast, UMT5Config, UMT5EncoderModel

__all__ = ["TEXT_ENCODER_VARIANTS", "TINY_VOCABULARY", "build_t5_tokenizer", "seeded", "tiny_t5_encoder"]


def seeded(seed: int, build):
    """Call ``build()`` in float32 with the torch RNG seeded to ``seed``; global RNG and default dtype are restored."""
    default_dtype = torch.get_default_dtype()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_default_dtype(torch.float32)
        try:
            return build()
        finally:
            torch.set_default_dtype(default_dtype)


# ----------------------------------------------------------------------------------------------------------------
# Tokenizer
# ----------------------------------------------------------------------------------------------------------------

_T5_SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")  # ids 0, 1, 2 as in every T5 tokenizer

TINY_VOCABULARY: tuple[str, ...] = (
    # articles, numbers, function words
    *("a", "an", "the", "one", "two", "three", "four", "and", "or", "of", "on", "in", "into", "onto", "off"),
    *("with", "from", "to", "at", "over", "under", "across", "is", "are", "it", "its", "then", "that"),
    # colours and looks
    *("red", "green", "blue", "yellow", "cyan", "magenta", "white", "black", "gray", "orange", "purple"),
    *("dark", "bright", "small", "large", "big", "tiny", "heavy", "light"),
    # objects and scenes
    *("ball", "balls", "cube", "cubes", "box", "block", "blocks", "sphere", "object", "objects", "glass"),
    *("floor", "ground", "table", "wall", "ramp", "background", "scene", "room", "water", "video", "camera"),
    # motion and physics
    *("bouncing", "bounces", "bounce", "falling", "falls", "fall", "rolling", "rolls", "roll", "sliding"),
    *("slides", "moving", "moves", "spinning", "colliding", "collide", "dropping", "dropped", "thrown"),
    *("stacked", "toppling", "left", "right", "up", "down", "slowly", "quickly", "fast", "slow"),
    *("gravity", "physics", "realistic", "static", "still", "shot", "high", "quality", "low", "blurry"),
)
_PUNCTUATION = (",", ".", "!", "?", ":", ";", "-", "'", '"', "(", ")")
_METASPACE = "\u2581"


def _lowercase_precompiled_charsmap() -> bytes:
    """SentencePiece ``precompiled_charsmap`` mapping ASCII ``A``-``Z`` to ``a``-``z``.

    T5 tokenizers normalise with a precompiled charsmap (a darts-clone double-array trie plus a table of
    replacement strings). ``T5TokenizerFast.from_pretrained`` rebuilds its backend from the vocabulary and keeps only
    this kind of normaliser, so lowercasing has to live here to survive a save/load round trip.
    """
    root_offset, leaf_offset = 64, 32  # children of the root at 64 ^ byte (1..26), their values at child ^ 32
    units = [0] * 256  # every node reachable from the root by one byte must be in range
    units[0] = root_offset << 10
    replacements = b""
    for upper in range(ord("A"), ord("Z") + 1):
        child = root_offset ^ upper
        units[child] = (leaf_offset << 10) | (1 << 8) | upper  # offset | has_leaf | label
        units[child ^ leaf_offset] = (1 << 31) | len(replacements)  # leaf: offset into the replacement table
        replacements += bytes([upper + 32, 0])
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + replacements


def build_t5_tokenizer(model_max_length: int = 512) -> T5TokenizerFast:
    """Build a tiny T5 tokenizer locally with the ``tokenizers`` library (no Hub download).

    Same structure as the released T5/UMT5 tokenizers: a Unigram model over ``"▁word"`` pieces, a precompiled
    charsmap normaliser (here: ASCII lowercasing), whitespace + metaspace pre-tokenisation and an ``</s>`` appended
    by the post-processor. ``<pad>`` is id 0, ``</s>`` id 1, ``<unk>`` id 2; words outside :data:`TINY_VOCABULARY`
    become a single ``<unk>``, punctuation attached to a word is split off. Round-trips through
    ``save_pretrained`` / ``T5TokenizerFast.from_pretrained`` / ``AutoTokenizer.from_pretrained``.
    """
    pieces = [(token, 0.0) for token in _T5_SPECIAL_TOKENS]
    pieces += [(_METASPACE + word, -5.0) for word in TINY_VOCABULARY]
    pieces += [(mark, -6.0) for mark in _PUNCTUATION]
    pieces += [(_METASPACE + mark, -6.0) for mark in _PUNCTUATION]

    backend = Tokenizer(Unigram(pieces, unk_id=2, byte_fallback=False))
    backend.normalizer = normalizers.Precompiled(_lowercase_precompiled_charsmap())
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=True),
        ]
    )
    backend.decoder = decoders.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=True)
    backend.post_processor = processors.TemplateProcessing(
        single=["$A", "</s>"], pair=["$A", "</s>", "$B", "</s>"], special_tokens=[("</s>", 1)]
    )
    return T5TokenizerFast(
        tokenizer_object=backend,
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_ids=0,
        model_max_length=model_max_length,
    )


TEXT_ENCODER_VARIANTS = ("t5", "umt5")


def tiny_t5_encoder(
    seed: int = 0, variant: str = "t5", d_model: int = 32
) -> T5EncoderModel | UMT5EncoderModel:
    """Tiny random text encoder for :func:`build_t5_tokenizer`'s vocabulary, output width ``d_model``.

    ``variant="t5"`` gives a ``T5EncoderModel`` (LTX, CogVideoX), ``"umt5"`` a ``UMT5EncoderModel`` (Wan).
    """
    shared = {
        "vocab_size": len(build_t5_tokenizer()),
        "d_model": d_model,
        "d_kv": 8,
        "d_ff": 37,
        "num_layers": 2,
        "num_heads": 4,
        "relative_attention_num_buckets": 8,
        "relative_attention_max_distance": 32,
        "dropout_rate": 0.0,
        "feed_forward_proj": "gated-gelu",
        "is_encoder_decoder": False,
        "use_cache": False,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "decoder_start_token_id": 0,
    }
    if variant == "t5":
        model_class, config = T5EncoderModel, T5Config(**shared)
    elif variant == "umt5":
        model_class, config = UMT5EncoderModel, UMT5Config(**shared)
    else:
        raise ValueError(
            f"Unknown text encoder variant {variant!r}; expected one of {TEXT_ENCODER_VARIANTS}."
        )
    return seeded(seed, lambda: model_class(config)).eval()
