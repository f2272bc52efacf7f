"""``transformers`` loading from the registry the way it loads from the Hub: ``HF_ENDPOINT``
pointing at it and ``HF_TOKEN`` a modelyard API key, ``AutoConfig.from_pretrained`` and
``AutoTokenizer.from_pretrained`` of a private repository at an alias (``revision="prod"``).
No model weights from the internet: the test makes its own tiny tokenizer (``tokenizers``) and
config. transformers runs in a child process, because ``huggingface_hub`` reads ``HF_ENDPOINT``
once, when it is first imported -- as it does in a user's program."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers

from tests.hub.support import Hub

VOCAB = {"[UNK]": 0, "[PAD]": 1, "hello": 2, "world": 3, "model": 4, "yard": 5}

LOAD = """
import json, sys
from transformers import AutoConfig, AutoTokenizer
config = AutoConfig.from_pretrained(sys.argv[1], revision="prod")
tokenizer = AutoTokenizer.from_pretrained(sys.argv[1], revision="prod")
print(json.dumps({"config": type(config).__name__, "hidden_size": config.hidden_size,
                  "ids": tokenizer("hello model yard zzz")["input_ids"], "vocab": tokenizer.vocab_size}))
"""


def tiny_tokenizer_model(directory: Path) -> Path:
    directory.mkdir(parents=True)
    tokenizer = Tokenizer(models.WordLevel(VOCAB, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "[UNK]", "pad_token": "[PAD]"})
    )
    config = {"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 64, "vocab_size": len(VOCAB)}  # fmt: skip
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def load(hub: Hub, repo_id: str, tmp_path: Path, token: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE"))}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", TRANSFORMERS_VERBOSITY="error")  # fmt: skip
    if token is not None:
        env["HF_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-c", LOAD, repo_id], env=env, capture_output=True, text=True, timeout=240, check=False
    )


def test_auto_config_and_auto_tokenizer_from_the_registry(hub: Hub, tmp_path: Path) -> None:
    digest = hub.push(tiny_tokenizer_model(tmp_path / "tok"), "acme/priv:tok-v1")
    hub.move("acme/priv", "prod", digest)

    loaded = load(hub, "acme/priv", tmp_path, hub.reader_key)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    result = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert result == {"config": "BertConfig", "hidden_size": 32, "ids": [2, 4, 5, 0], "vocab": len(VOCAB)}
    assert any("/acme/priv/resolve/" in path for _, path, _, _ in hub.served.responses)

    refused = load(hub, "acme/priv", tmp_path / "anonymous", None)  # no token: the private repository is hidden
    assert refused.returncode != 0
    assert "RepositoryNotFoundError" in refused.stderr and "401" in refused.stderr, refused.stderr[-3000:]
