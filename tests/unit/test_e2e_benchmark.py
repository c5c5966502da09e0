"""benchmarks/e2e.py run order: --interleave times the graphs in rounds, so a drift in the machine's load hits every
graph alike (the sampler ratio is read per round)."""
from benchmarks import e2e


def fake_runs(monkeypatch):
    order = []

    def run_once(server, events, label, api, i, warmup, timeout):
        order.append((label, i))
        return {"graph": label, "run": i - warmup, "warmup": i < warmup, "nodes": [("7", "S", float(i))]}

    monkeypatch.setattr(e2e, "run_once", run_once)
    return order


def test_interleave_runs_in_rounds_after_the_warmups(monkeypatch):
    order = fake_runs(monkeypatch)
    results = e2e.run_all(None, None, {"plain": {}, "t2v": {}}, warmup=1, runs=3, timeout=1, interleave=True)
    assert order == [("plain", 0), ("t2v", 0), ("plain", 1), ("t2v", 1), ("plain", 2), ("t2v", 2),
                     ("plain", 3), ("t2v", 3)]
    assert [r["run"] for r in results["t2v"]] == [-1, 0, 1, 2]


def test_default_runs_graph_after_graph(monkeypatch):
    order = fake_runs(monkeypatch)
    e2e.run_all(None, None, {"plain": {}, "t2v": {}}, warmup=1, runs=2, timeout=1, interleave=False)
    assert order == [("plain", 0), ("plain", 1), ("plain", 2), ("t2v", 0), ("t2v", 1), ("t2v", 2)]
