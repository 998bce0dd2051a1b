"""The reproducibility record (`environment.json`) written by training, resuming and import."""

import json

import torch

from grokinterp.cli import main
from grokinterp.storage import environment


def test_training_records_the_environment_and_resume_warns_on_a_change(tiny_cfg, tmp_path, capsys):
    from grokinterp.training.loop import resume_runs, train_runs

    run = tmp_path / "run"
    train_runs([tiny_cfg], [run], device="cpu", progress=False)
    (first,) = environment.records(run)
    assert first["event"] == "train" and first["torch"] == torch.__version__
    assert first["cuda"] == torch.version.cuda and first["device"].startswith("cpu")
    assert first["deterministic"]["algorithms"] == torch.are_deterministic_algorithms_enabled()

    resume_runs([run], device="cpu", progress=False, epochs=tiny_cfg.epochs + 10)
    assert capsys.readouterr().err == ""  # same environment: no warning
    path = run / environment.ENVIRONMENT_FILE
    data = json.loads(path.read_text())
    data["records"][-1] |= {"torch": "1.0.0", "device": "NVIDIA H100"}  # as if made elsewhere
    path.write_text(json.dumps(data))
    resume_runs([run], device="cpu", progress=False, epochs=tiny_cfg.epochs + 20)
    err = capsys.readouterr().err
    assert f"torch: 1.0.0 -> {torch.__version__}" in err and "device: NVIDIA H100 -> cpu" in err
    assert [r["event"] for r in environment.records(run)] == ["train", "resume", "resume"]


def test_differences_name_only_the_compared_fields():
    before = environment.current("cpu")
    after = {**before, "python": "0.0", "cudnn": 1}
    assert environment.differences(before, after) == [f"cudnn: {before['cudnn']} -> 1"]


def test_a_run_made_before_the_record_resumes_without_warning(tiny_cfg, tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(["train", "--preset", "small", "--p", "11", "--epochs", "20", "--out", str(run)]) == 0
    )
    (run / environment.ENVIRONMENT_FILE).unlink()
    assert main(["train", "--resume", str(run), "--epochs", "30"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert [r["event"] for r in environment.records(run)] == ["resume"]
