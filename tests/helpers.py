"""Builders shared by tests and benchmarks: a run's initial state, runs killed at a chosen
write or step as a crash leaves them, run directories locked by another process, a synthetic
analysis with the schema that `grokinterp analyze` writes, and headless Chromium that opens a
report and says whether every plot drew."""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
import struct
import subprocess
import sys
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.numpy import save_file
from torch import Tensor

from grokinterp.config import RunConfig
from grokinterp.presets import preset
from grokinterp.storage import store


class Killed(BaseException):
    """The process dying at a write (no `except Exception` catches it)."""


@contextmanager
def killed_at_write(n: int | None):
    """Count the writes of run files (`store.atomic_write`, `store.append_metrics`) into the
    yielded list; the n-th stops half-way, as a kill leaves it: half a temporary file, or the
    appended rows cut in the middle."""
    count = [0]
    atomic_write, append_metrics = store.atomic_write, store.append_metrics

    def killed_here() -> bool:
        count[0] += 1
        return count[0] == n

    def torn_atomic_write(path, data):
        if killed_here():
            Path(path).with_name(f".{Path(path).name}.tmp-{os.getpid()}").write_bytes(
                data[: len(data) // 2]
            )
            raise Killed
        atomic_write(path, data)

    def torn_append(run_dir, rows):
        path = Path(run_dir) / store.METRICS_FILE
        before = path.stat().st_size
        append_metrics(run_dir, rows)
        if killed_here():
            os.truncate(path, (before + path.stat().st_size) // 2)
            raise Killed

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "atomic_write", torn_atomic_write)
        patch.setattr(store, "append_metrics", torn_append)
        yield count


@contextmanager
def killed_at_step(step: int):
    """A run dies (KeyboardInterrupt, as Ctrl-C) when it first saves its state at `step`: its
    checkpoint and metrics rows of that step are out, its state is not."""
    save_state = store.save_state

    def die(run_dir, at, tensors, finished):
        if at == step:
            raise KeyboardInterrupt
        save_state(run_dir, at, tensors, finished)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "save_state", die)
        yield


_HOLD = (
    "import sys\nfrom grokinterp.storage.run_lock import holding\n"
    "with holding(sys.argv[1:]):\n    print('held', flush=True)\n    sys.stdin.read()\n"
)


@contextmanager
def held_by_another_process(*run_dirs: Path):
    """The run directories locked (`grokinterp.storage.run_lock`) by another live process, which the
    context yields; it is SIGKILLed at the end, as a killed writer leaves its lock file."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    command = [sys.executable, "-c", _HOLD, *(str(run_dir) for run_dir in run_dirs)]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout.readline() == b"held\n"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _circle_embedding(p: int, freqs: tuple[int, ...]) -> Tensor:
    """[p, 2 len(freqs)]: element x as (cos w_k x, sin w_k x) for each k, w_k = 2 pi k / p."""
    x = torch.arange(p, dtype=torch.float64)[:, None] * torch.tensor(freqs) * 2 * math.pi / p
    return torch.stack([x.cos(), x.sin()], dim=-1).flatten(1)


def _quadratic_mlp(p: int, freqs: tuple[int, ...], d_mlp: int) -> RunConfig:
    return preset("small").replace(
        model="mlp", activation="quadratic", p=p, d_model=2 * len(freqs), d_mlp=d_mlp
    )


def pizza_mlp(p: int, freqs: tuple[int, ...]) -> tuple[RunConfig, dict[str, Tensor]]:
    """Zhong et al.'s pizza as a quadratic MLP on [E_a, E_b] (float64 weights): for each
    frequency k, neurons x1^2, x2^2 and ((x1 + x2) / sqrt 2)^2 of x = E_a + E_b in k's plane, read
    out as cos(w c) (x1^2 - x2^2) + sin(w c) 2 x1 x2. With x = 2 cos(w (a - b) / 2) times the
    unit vector at angle w (a + b) / 2, the logits are
        Q_abc = sum_k 4 cos^2(w_k (a - b) / 2) cos(w_k (a + b - c)):
    a function of E_a + E_b, the right answer's logit a function of a - b alone."""
    n = len(freqs)
    cfg = _quadratic_mlp(p, freqs, 3 * n)
    W_in = torch.zeros(4 * n, 3 * n, dtype=torch.float64)
    W_U = torch.zeros(3 * n, p, dtype=torch.float64)
    w_c = torch.arange(p, dtype=torch.float64) * 2 * math.pi / p
    for j, k in enumerate(freqs):
        cos, sin = 2 * j, 2 * j + 1
        for half in (0, 2 * n):  # the same direction read from E_a and from E_b
            W_in[half + cos, 3 * j] = 1
            W_in[half + sin, 3 * j + 1] = 1
            W_in[half + cos, 3 * j + 2] = W_in[half + sin, 3 * j + 2] = 1 / math.sqrt(2)
        # x1^2 - x2^2 and 2 x1 x2 = 2 n3 - x1^2 - x2^2
        W_U[3 * j] = (k * w_c).cos() - (k * w_c).sin()
        W_U[3 * j + 1] = -(k * w_c).cos() - (k * w_c).sin()
        W_U[3 * j + 2] = 2 * (k * w_c).sin()
    state = {"embed.W_E": _circle_embedding(p, freqs), "blocks.0.mlp.W_in": W_in}
    return cfg, state | {"unembed.W_U": W_U}


def clock_mlp(
    p: int, freqs: tuple[int, ...], class_scale: Tensor
) -> tuple[RunConfig, dict[str, Tensor]]:
    """Nanda et al.'s clock as a quadratic MLP on [E_a, E_b] (float64 weights): the products
    (E_a)_i (E_b)_j of each frequency's plane as differences of squares, (u + v)^2 - (u - v)^2 =
    4 u v, read out through M_c = [[cos w c, sin w c], [sin w c, -cos w c]] and scaled by
    `class_scale` [p] per class:
        Q_abc = s_c E_a^T M_c E_b = s_c sum_k cos(w_k (a + b - c)),
    so the right answer's logit s_{a+b} depends on a + b alone, and per triple
    cos(dQ/dE_a, dQ/dE_b) = (1 / K) sum_k cos(w_k (a - b)) (M_c is orthogonal and symmetric)."""
    n = len(freqs)
    cfg = _quadratic_mlp(p, freqs, 8 * n)
    W_in = torch.zeros(4 * n, 8 * n, dtype=torch.float64)
    W_U = torch.zeros(8 * n, p, dtype=torch.float64)
    w_c = torch.arange(p, dtype=torch.float64) * 2 * math.pi / p
    for j, k in enumerate(freqs):
        c, s = (k * w_c).cos(), (k * w_c).sin()
        M = {(0, 0): c, (0, 1): s, (1, 0): s, (1, 1): -c}
        for m, ((i, jj), entry) in enumerate(M.items()):
            plus, minus = 8 * j + 2 * m, 8 * j + 2 * m + 1
            W_in[2 * j + i, plus] = W_in[2 * j + i, minus] = 1
            W_in[2 * n + 2 * j + jj, plus], W_in[2 * n + 2 * j + jj, minus] = 1, -1
            W_U[plus], W_U[minus] = entry / 4, -entry / 4
    state = {"embed.W_E": _circle_embedding(p, freqs), "blocks.0.mlp.W_in": W_in}
    return cfg, state | {"unembed.W_U": W_U * class_scale}


# ---- reports: a synthetic analysis, and a page opened in headless Chromium ----------------
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def write_fake_analysis(
    out: Path, run_dir: Path, cfg: RunConfig, epochs: list[int], keys: list[int], seed: int = 0
) -> Path:
    """measures.csv, neurons.safetensors and summary.json with the analysis schema (synthetic
    values), and final_views.safetensors computed from the last checkpoint of the real run at
    `run_dir` (filed under the synthetic last epoch)."""
    rng = np.random.default_rng(seed)
    n, n_freq, d_mlp = len(epochs), (cfg.p - 1) // 2, cfg.d_mlp
    t = np.asarray(epochs, dtype=np.float64) / max(epochs[-1], 1)
    rise = lambda at, sharp=25.0: 1 / (1 + np.exp(-sharp * (t - at)))  # noqa: E731
    noise = lambda: np.exp(rng.normal(0, 0.05, n))  # noqa: E731
    chance = np.log(cfg.p)
    ends = [epochs[int(f * (n - 1))] for f in (0.1, 0.5, 0.7)]
    table = {
        "epoch": epochs,
        "train_loss": chance * np.exp(-60 * t) * noise() + 1e-7,
        "test_loss": (chance + 2) * (1 - rise(0.6)) * noise() + 1e-6,
        "restricted_loss": (chance + 1) * (1 - rise(0.45)) * noise() + 1e-6,
        "restricted_loss_test": (chance + 1.2) * (1 - rise(0.47)) * noise() + 1e-6,
        "excluded_loss": (0.1 + 8 * rise(0.3) * (1 - rise(0.8))) * noise(),
        "logit_fve": 0.95 * rise(0.4),
        "weight_norm": 800 * (1 - 0.6 * rise(0.6)) * noise(),
        "gini_W_E": 0.2 + 0.6 * rise(0.5),
        "gini_W_L": 0.25 + 0.55 * rise(0.55),
        "fve_share": 0.85 * rise(0.4),
        "gradient_symmetricity": 0.9 - 0.6 * rise(0.5),
        "distance_irrelevance": 0.5 + 0.4 * rise(0.5),
    }
    table["all_loss"] = 0.3 * table["train_loss"] + 0.7 * table["test_loss"]
    table["train_acc"], table["test_acc"] = rise(0.05), rise(0.6)
    final_clusters = {k: int(0.85 * d_mlp / max(len(keys), 1)) for k in keys}
    for k in range(1, n_freq + 1):
        grow = 5 * rise(0.4) if k in keys else 1 - 0.95 * rise(0.6)
        table[f"W_E.k{k}"] = (grow + 0.05) * noise()
        table[f"W_L.k{k}"] = 3 * (grow + 0.05) * noise()
        table[f"cluster.k{k}"] = np.floor(final_clusters.get(k, 0) * rise(0.4)).astype(np.int64)
    table["sq.embed.W_E"] = table["weight_norm"] / 4
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(table).to_csv(out / "measures.csv", index=False)
    llc = 20 * rise(0.1) * (1 - 0.5 * rise(0.6)) + 1
    llc[-1] = np.nan  # the diverged row has no number
    status = ["ok"] * (n - 1) + ["diverged: loss not finite"]
    pd.DataFrame({"epoch": epochs, "llc_mean": llc, "llc_std": 0.1 * llc, "status": status}).to_csv(
        out / "llc.csv", index=False
    )

    dominant = rng.integers(1, n_freq + 1, size=(n, d_mlp))
    final_fve = rng.dirichlet(np.ones(n_freq), size=d_mlp).astype(np.float32)
    final_fve[np.arange(d_mlp), dominant[-1] - 1] += 1.0
    final_fve /= final_fve.sum(axis=1, keepdims=True)
    fve = rng.uniform(0, 1, size=(n, d_mlp)).astype(np.float32)
    fve[-1] = final_fve[np.arange(d_mlp), dominant[-1] - 1]
    save_file(
        {
            "epochs": np.asarray(epochs, dtype=np.int64),
            "dominant_frequency": dominant.astype(np.int64),
            "fve": fve,
            "final_fve_by_frequency": final_fve,
        },
        out / "neurons.safetensors",
    )
    summary = {
        "run_name": out.name,
        "run_dir": str(run_dir),
        "config": cfg.to_dict(),
        "key_frequencies": keys,
        "key_frequency_rule": "distinct dominant neuron frequencies",
        "phases": dict(
            zip(("memorization_end", "circuit_formation_end", "cleanup_end"), ends, strict=True)
        ),
        "phase_rule": "synthetic",
        "final_train_loss": float(table["train_loss"][-1]),
        "final_test_loss": float(table["test_loss"][-1]),
        "fve_threshold": 0.85,
        "fve_share": float(table["fve_share"][-1]),
        "cluster_sizes": {str(k): c for k, c in final_clusters.items()},
        "unexplained_neurons": d_mlp - sum(final_clusters.values()),
        "excluded_loss_by_frequency": {str(k): 1.0 + k for k in keys},
        "logit_fve_final": float(table["logit_fve"][-1]),
        "n_checkpoints": n,
        "last_epoch": epochs[-1],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    from grokinterp.analysis.views import final_views
    from grokinterp.storage.run import open_run

    run = open_run(run_dir)
    views = final_views(
        run.task, run.architecture, run.state_dict(), epochs[-1], run.task.basis(), keys
    )
    (out / "final_views.safetensors").write_bytes(views.to_bytes())
    return out


CATCH_ERRORS = """<script>window.__errors=[];
window.addEventListener("error",function(e){window.__errors.push(String(e.message))});
window.addEventListener("unhandledrejection",function(e){window.__errors.push(String(e.reason))});
</script>"""
CHECK_DRAWN = """<script>window.addEventListener("load",function(){
function mark(){var plots=document.querySelectorAll(".js-plotly-plot"),drawn=0;
plots.forEach(function(p){var svg=p.querySelector("svg.main-svg"),box=p.getBoundingClientRect();
if(svg&&svg.childElementCount&&box.width>0&&box.height>0&&p.querySelector(".trace, image"))
drawn++;});var out=document.createElement("pre");out.id="grokinterp-check";
out.textContent=JSON.stringify({errors:window.__errors,plots:plots.length,drawn:drawn,
drawn_ms:window.__drawnMs,resources:performance.getEntriesByType("resource").map(
function(r){return r.name})});document.body.appendChild(out);}
(window.grokinterpDrawn||Promise.reject("no grokinterpDrawn")).then(function(){
window.__drawnMs=performance.now();mark();},function(e){window.__errors.push(String(e));mark();});
});</script>"""


FIGURE_TAG = re.compile(
    r'<script type="application/json" class="grokinterp-figure" data-target="fig-(\w+)">'
    r"(.*?)</script>",
    re.S,
)


def _decode(node):
    """plotly's JSON with base64 typed arrays ({dtype, bdata, shape}) -> numpy arrays."""
    if isinstance(node, dict) and "bdata" in node and "dtype" in node:
        values = np.frombuffer(base64.b64decode(node["bdata"]), dtype=np.dtype(node["dtype"]))
        shape = node.get("shape")
        return values.reshape([int(s) for s in str(shape).split(",")]) if shape else values
    if isinstance(node, dict):
        return {k: _decode(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_decode(v) for v in node]
    return node


def figures_in(text: str) -> dict[str, dict]:
    return {name: _decode(json.loads(payload)) for name, payload in FIGURE_TAG.findall(text)}


def instrumented_copy(page_path: Path, out: Path) -> Path:
    """The page with an error recorder first and a 'plots drawn' marker writer last."""
    text = page_path.read_text()
    text = text.replace("<head>", "<head>" + CATCH_ERRORS, 1)
    out.write_text(text.replace("</body>", CHECK_DRAWN + "</body>", 1))
    return out


def chromium(args: list[str], profile: Path, timeout: float = 60) -> str:
    command = [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def drawn_marker(dom: str) -> dict:
    found = re.search(r'<pre id="grokinterp-check">(.*?)</pre>', dom, re.S)
    assert found, "the page never finished drawing"
    return json.loads(html.unescape(found.group(1)))


def png_is_blank(path: Path) -> bool:
    """True when every pixel of an 8-bit PNG has one colour.

    Read without unfiltering: in a one-colour image every filtered scanline, past its first
    pixel, repeats a single pixel's bytes whatever the filter (None, Sub, Up, Average, Paeth).
    """
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = {}, 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunks.setdefault(kind, []).append(data[pos + 8 : pos + 8 + length])
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][0][:10])
    assert depth == 8
    bpp = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    raw = np.frombuffer(zlib.decompress(b"".join(chunks[b"IDAT"])), dtype=np.uint8)
    rows = raw.reshape(height, 1 + width * bpp)[:, 1 + bpp :].reshape(height, width - 1, bpp)
    return bool(np.all(rows == rows[:, :1]))
