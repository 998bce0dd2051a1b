"""Builders shared by the report's tests and benchmarks/bench_report.py: a synthetic analysis
with the schema that `grokinterp analyze` writes, and headless Chromium that opens a page and
says whether every plot drew."""

from __future__ import annotations

import base64
import html
import json
import re
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors.numpy import save_file

from grokinterp.config import RunConfig

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
    """measures.csv, neurons.safetensors and summary.json with the analysis schema."""
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
