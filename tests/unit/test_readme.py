"""The README's "your own data" block runs as written, on a generated CSV."""
import re
from pathlib import Path

import numpy as np
import pandas as pd

README = Path(__file__).resolve().parents[2] / "README.md"


def _own_data_block() -> str:
    text = README.read_text()
    section = text[text.index("**Your own data.**"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_block_is_ten_lines_of_public_api():
    code = [ln for ln in _own_data_block().splitlines() if ln.strip()]
    assert len(code) <= 10
    assert all("._" not in ln for ln in code)          # no private names


def test_readme_block_trains_lightgcn_on_a_csv(tmp_path, monkeypatch, capsys):
    # 60 listeners with string ids, 40 songs with 1-based ids, play counts; two taste groups
    rng = np.random.default_rng(0)
    rows = []
    for u in range(60):
        songs = rng.choice(np.arange(1, 21) + 20 * (u % 2), size=10, replace=False)
        rows += [(f"user-{u:02d}", int(s), int(rng.integers(1, 50))) for s in songs]
    pd.DataFrame(rows, columns=["listener", "song", "count"]).to_csv(
        tmp_path / "plays.csv", index=False)
    monkeypatch.chdir(tmp_path)
    code = _own_data_block().replace("LightGCN()", "LightGCN(num_epochs=5, embed_dim=16)")
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    split, model = scope["split"], scope["model"]
    assert "'ndcg'" in capsys.readouterr().out
    first = np.asarray(model.recommend([split.user_ids[0]], k=5, exclude=split.train,
                                       id_map=split)).ravel()
    # original song ids (1..40) of the listener's own taste group, none already heard
    heard = set(pd.read_csv("plays.csv").query("listener == 'user-00'")["song"])
    assert len(first) == 5 and set(first.tolist()) <= set(range(1, 41))
    assert split.user_ids[0] == "user-00"
    train_songs = set(split.item_ids[split.train.loc[split.train.user == 0, "item"]])
    assert not set(first.tolist()) & train_songs and train_songs <= heard
