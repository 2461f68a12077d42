"""embed.encoder against sentence-transformers' encode, on the bundled model and variants of it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import sentence_transformers as st  # noqa: E402  (the oracle: a test dependency, in setup.py's test extra)

from smart_spark.datasets.real_text import python_doc_paragraphs  # noqa: E402
from smart_spark.embed.batches import pad_rows  # noqa: E402
from smart_spark.embed.encoder import Encoder, load_encoder  # noqa: E402
from smart_spark.embed.model_folder import default_model_path, model_id  # noqa: E402
from smart_spark.errors import SmartError  # noqa: E402

LONG = "The quick brown fox jumps over the lazy dog near the riverbank. " * 60  # ~800 tokens
TEXTS = [
    "Translate the following sentence into French: the cat sleeps.",
    "",
    LONG,
    "Summarize: " + LONG[:400],
    "ÜNÏCÖDÉ Text, with CAPS and émojis 🙂 and 中文字符",
    "a",
    "What is 2 + 2?",
    "  leading and trailing spaces  ",
    "Write a haiku about autumn leaves falling on a quiet pond.",
] * 3


def _st_encode(folder: str, texts: list[str], max_seq_length: int | None = None) -> np.ndarray:
    model = st.SentenceTransformer(folder, device="cpu")
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    return model.encode(texts, batch_size=8, convert_to_numpy=True)


def _assert_close(ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.dtype == np.float32 and ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)
    cos = (ours * ref).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
    assert cos.min() >= 0.99999


def _copy_model(dst: Path, *, skip: tuple[str, ...] = ()) -> Path:
    """Copy the bundled folder to ``dst`` (the weights as a symlink), leaving out ``skip`` entries."""
    src = Path(default_model_path())
    dst.mkdir(parents=True)
    for item in src.iterdir():
        if item.name in skip:
            continue
        if item.is_dir():
            shutil.copytree(item, dst / item.name)
        elif item.suffix == ".safetensors":
            (dst / item.name).symlink_to(item)
        else:
            shutil.copy(item, dst / item.name)
    return dst


@pytest.fixture(scope="module")
def bundled() -> Encoder:
    return load_encoder(None, device="cpu")


def test_bundled_matches_sentence_transformers(bundled: Encoder) -> None:
    ours = bundled.encode(TEXTS, batch_size=5)
    _assert_close(ours, _st_encode(default_model_path(), TEXTS))
    assert bundled.dim == 384 and bundled.max_length == 256
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    # truncation: the long text and the same text with more appended embed identically
    again = bundled.encode([LONG, LONG + " extra words past the limit"])
    np.testing.assert_array_equal(again[0], again[1])


def test_batch_size_and_order_do_not_matter(bundled: Encoder) -> None:
    one = bundled.encode(TEXTS, batch_size=1)
    many = bundled.encode(TEXTS[::-1], batch_size=64)[::-1]
    np.testing.assert_allclose(one, many, atol=1e-5, rtol=0)
    assert bundled.encode([]).shape == (0, 384)


@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_rows_is_what_the_tokenizer_pads(bundled: Encoder, side: str) -> None:
    paragraphs = python_doc_paragraphs(200)
    texts = paragraphs + TEXTS
    tok = bundled.tokenizer
    encoded = tok(texts, truncation=True, max_length=64, return_attention_mask=False)
    keys = list(encoded.keys())
    lengths = np.array([len(ids) for ids in encoded["input_ids"]])
    p = len(paragraphs)  # any rows, any order; TEXTS[0..2]: a short one, the empty one, a long one
    idx = np.array([5, 0, p, 3, 17, p + 1, p + 2])
    old_side, tok.padding_side = tok.padding_side, side
    try:
        ref = tok.pad({k: [encoded[k][i] for i in idx] for k in keys}, return_tensors="pt")
    finally:
        tok.padding_side = old_side
    ours = pad_rows(encoded, keys, idx, lengths[idx], {"input_ids": tok.pad_token_id}, left=side == "left")
    assert sorted(ours) == sorted(ref)
    for key in ref:
        assert ours[key].dtype == torch.int64
        torch.testing.assert_close(ours[key], ref[key].long(), rtol=0, atol=0)


def _bpe_left_model(folder: Path) -> Path:
    """A tiny RoBERTa-style folder unlike the bundled one: a byte-level BPE tokenizer trained on real
    text, pad id 1, padding and truncation on the left, no token_type_ids; random weights."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaModel

    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.train_from_iterator(python_doc_paragraphs(300), trainers.BpeTrainer(
        vocab_size=500, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], show_progress=False))
    tk.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
        model_input_names=["input_ids", "attention_mask"], truncation_side="left", padding_side="left",
        model_max_length=64).save_pretrained(folder)
    torch.manual_seed(0)
    RobertaModel(RobertaConfig(vocab_size=500, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=64, max_position_embeddings=80, pad_token_id=1)
                 ).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("model", ["bundled", "bundled-16", "bpe-left"])
def test_tokenize_is_the_tokenizer_call(tmp_path: Path, model: str) -> None:
    texts = python_doc_paragraphs(100) + TEXTS
    if model == "bpe-left":
        enc = load_encoder(str(_bpe_left_model(tmp_path / "bpe")), device="cpu")
        assert enc.tokenizer.pad_token_id == 1 and enc.tokenizer.truncation_side == "left"
    else:
        enc = load_encoder(None, device="cpu", max_length=16 if model == "bundled-16" else 256)
    ref = enc.tokenizer(texts, truncation=True, max_length=enc.max_length, return_attention_mask=False)
    got = enc.tokenize(texts)
    assert sorted(got.encoded) == sorted(ref.keys())
    for key in ref.keys():
        assert got.encoded[key] == ref[key]
    np.testing.assert_array_equal(got.lengths, [len(ids) for ids in ref["input_ids"]])
    assert got.lengths.max() == enc.max_length  # some texts were truncated
    # the untruncated counts come from the same pass: the tokenizer's own untruncated call
    untruncated = enc.tokenizer(texts, truncation=False, return_attention_mask=False, verbose=False)
    np.testing.assert_array_equal(got.untruncated, [len(ids) for ids in untruncated["input_ids"]])
    assert (got.untruncated > enc.max_length).sum() >= 3


def test_left_padding_with_pad_id_one_embeds_like_no_padding(tmp_path: Path) -> None:
    enc = load_encoder(str(_bpe_left_model(tmp_path / "bpe")), device="cpu")
    texts = python_doc_paragraphs(40)
    alone = np.concatenate([enc.encode([t]) for t in texts])  # one row per pass: nothing padded
    padded = enc.encode(texts, batch_size=16)
    np.testing.assert_allclose(padded, alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("prefetch", [False, True])
def test_encode_stream_is_encode_per_chunk(bundled: Encoder, prefetch: bool) -> None:
    texts = python_doc_paragraphs(60) + TEXTS
    chunks = [texts[:25], [], texts[25:26], texts[26:]]
    streamed = list(bundled.encode_stream(iter(chunks), batch_size=8, max_tokens=512, prefetch=prefetch))
    assert [len(e) for e in streamed] == [len(c) for c in chunks]
    for chunk, emb in zip(chunks, streamed):
        np.testing.assert_array_equal(emb, bundled.encode(chunk, batch_size=8, max_tokens=512))
    # a bad text in a later chunk fails the stream, naming it, whether or not it was tokenized ahead
    with pytest.raises(SmartError, match="text #1"):
        list(bundled.encode_stream(iter([["fine"], ["ok", None]]), prefetch=prefetch))


def test_shorter_max_length_matches_sentence_transformers() -> None:
    enc = load_encoder(None, device="cpu", max_length=16)
    assert enc.max_length == 16 and enc.model_id.endswith("/max16")
    _assert_close(enc.encode(TEXTS), _st_encode(default_model_path(), TEXTS, max_seq_length=16))
    # a max_length above the folder's max_seq_length (256) is capped at it
    assert load_encoder(None, device="cpu", max_length=10_000).max_length == 256


@pytest.mark.parametrize(
    "pooling",
    [
        {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False},
        {"pooling_mode_max_tokens": True, "pooling_mode_mean_tokens": False},
        {"pooling_mode": "lasttoken"},
        {"pooling_mode": "weightedmean"},
        {"pooling_mode": ["cls", "mean_sqrt_len_tokens"]},
    ],
    ids=["cls", "max", "lasttoken", "weightedmean", "cls+mean_sqrt_len"],
)
def test_pooling_modes_match_sentence_transformers(tmp_path: Path, pooling: dict) -> None:
    folder = _copy_model(tmp_path / "pooled")
    config_path = folder / "1_Pooling" / "config.json"
    config = json.loads(config_path.read_text())
    config = {k: v for k, v in config.items() if not k.startswith("pooling_mode")}
    config_path.write_text(json.dumps({**config, **pooling}))
    enc = load_encoder(str(folder), device="cpu")
    ours = enc.encode(TEXTS, batch_size=4)
    _assert_close(ours, _st_encode(str(folder), TEXTS))
    assert enc.dim == 384 * (2 if isinstance(pooling.get("pooling_mode"), list) else 1)
    assert enc.model_id != load_encoder(None, device="cpu").model_id  # the pooling config is in the key


def test_default_prompt_excluded_from_pooling_matches(tmp_path: Path) -> None:
    folder = _copy_model(tmp_path / "prompted")
    (folder / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": {"query": "query: "}, "default_prompt_name": "query"})
    )
    config_path = folder / "1_Pooling" / "config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "include_prompt": False}))
    ours = load_encoder(str(folder), device="cpu").encode(TEXTS)
    _assert_close(ours, _st_encode(str(folder), TEXTS))
    assert not np.allclose(ours, load_encoder(None, device="cpu").encode(TEXTS), atol=1e-3)


def test_dense_module_matches_sentence_transformers(tmp_path: Path) -> None:
    from sentence_transformers.sentence_transformer.modules import Dense

    base = st.SentenceTransformer(default_model_path(), device="cpu")
    dense = Dense(384, 32, activation_function=torch.nn.GELU())
    folder = str(tmp_path / "dense")
    st.SentenceTransformer(modules=[base[0], base[1], dense, base[2]], device="cpu").save(folder)
    enc = load_encoder(folder, device="cpu")
    assert enc.dim == 32
    _assert_close(enc.encode(TEXTS), _st_encode(folder, TEXTS))


def test_plain_hugging_face_folder_is_mean_pooled_and_normalised(tmp_path: Path) -> None:
    skip = ("modules.json", "sentence_bert_config.json", "1_Pooling", "config_sentence_transformers.json")
    folder = _copy_model(tmp_path / "plain", skip=skip)
    enc = load_encoder(str(folder), device="cpu", max_length=512)
    assert not enc.spec.is_sentence_transformers and enc.max_length == 512  # tokenizer / position limit
    ours = enc.encode(TEXTS)
    ref = _st_encode(str(folder), TEXTS)  # sentence-transformers' default for a plain folder: mean pooling
    _assert_close(ours, ref / np.linalg.norm(ref, axis=1, keepdims=True))


def test_unusable_model_folders_raise_smart_error(tmp_path: Path) -> None:
    with pytest.raises(SmartError, match="does-not-exist"):
        load_encoder(str(tmp_path / "does-not-exist"), device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SmartError, match="empty"):
        load_encoder(str(tmp_path / "empty"), device="cpu")
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "config.json").write_text("{not json")
    with pytest.raises(SmartError, match="garbage"):
        load_encoder(str(tmp_path / "garbage"), device="cpu")
    no_weights = _copy_model(tmp_path / "no-weights", skip=("model.safetensors",))
    with pytest.raises(SmartError, match="no-weights"):
        load_encoder(str(no_weights), device="cpu")
    odd = _copy_model(tmp_path / "odd-module")
    modules = json.loads((odd / "modules.json").read_text())
    modules.append({"idx": 3, "name": "3", "path": "3_LSTM", "type": "sentence_transformers.models.LSTM"})
    (odd / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(SmartError, match="LSTM"):
        load_encoder(str(odd), device="cpu")


def test_bad_texts_and_devices(bundled: Encoder) -> None:
    with pytest.raises(SmartError, match="None"):
        bundled.encode(["fine", None])  # type: ignore[list-item]
    with pytest.raises(SmartError, match="--device"):
        load_encoder(None, device="tpu")


def test_model_id_is_stable_and_cached(tmp_path: Path, bundled: Encoder) -> None:
    assert model_id(None) == bundled.model_id == model_id(default_model_path(), 256)
    assert bundled.model_id.startswith("all-MiniLM-L6-v2@")
    assert load_encoder(None, device="cpu") is bundled
    copy = _copy_model(tmp_path / "MyModel")
    assert model_id(str(copy)).split("@")[1] == bundled.model_id.split("@")[1]  # same files, same hash
    assert model_id(str(copy)).startswith("MyModel@")
