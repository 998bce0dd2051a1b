import torch

from grokinterp import data
from grokinterp.presets import preset
from grokinterp.tasks import task_of


def test_all_pairs_and_labels_match_a_loop():
    cfg = preset("small").replace(p=7)
    tokens, labels = data.all_tokens(cfg), data.labels(cfg)
    assert tokens.shape == (49, 3) and tokens.dtype == torch.int64
    expected = [(a, b, 7, (a + b) % 7) for a in range(7) for b in range(7)]
    got = [(*map(int, row), int(label)) for row, label in zip(tokens, labels, strict=True)]
    assert got == expected


def test_split_sizes_disjoint_and_covering():
    cfg = preset("canonical")
    train = data.train_indices(cfg)
    test = data.test_indices(task_of(cfg), train)
    assert len(train) == 3830 and len(test) == 8939
    assert len(set(train.tolist()) | set(test.tolist())) == cfg.p**2
    assert not set(train.tolist()) & set(test.tolist())
    assert torch.equal(train, train.sort().values)


def test_split_depends_on_data_seed_only():
    cfg = preset("small")
    same = data.train_indices(cfg.replace(seed=123))
    assert torch.equal(data.train_indices(cfg), same)
    assert not torch.equal(data.train_indices(cfg), data.train_indices(cfg.replace(data_seed=1)))


def test_swap_unseen_matches_a_loop():
    p = 5
    train = torch.tensor([0 * p + 1, 2 * p + 3, 4 * p + 4])
    pairs = torch.arange(p * p)
    got = task_of(preset("small").replace(p=p)).swap_unseen(train, pairs).tolist()
    trained = {(0, 1), (2, 3), (4, 4)}
    assert got == [(b, a) not in trained for a in range(p) for b in range(p)]
