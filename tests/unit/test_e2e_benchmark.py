"""dev/benchmarks/e2e.py run order: --interleave times the graphs in rounds, so a drift in the machine's load hits every
graph alike (the sampler ratio is read per round)."""
from dev.benchmarks import e2e


def fake_runs(monkeypatch):
    order = []

    def run_once(server, events, label, api, i, warmup, timeout, switch=False):
        order.append((label, i, switch))
        return {"graph": label, "run": i - warmup, "warmup": i < warmup or switch, "switch": switch,
                "nodes": [("7", "S", float(i))]}

    monkeypatch.setattr(e2e, "run_once", run_once)
    return order


def test_interleave_runs_in_rounds_after_the_warmups(monkeypatch):
    order = fake_runs(monkeypatch)
    results = e2e.run_all(None, None, {"plain": {}, "t2v": {}}, warmup=1, runs=2, timeout=1, interleave=True)
    # Each timed run follows an untimed one of the same graph: the model swap after the other graph is not timed.
    assert order == [("plain", 0, False), ("t2v", 0, False),
                     ("plain", 1, True), ("plain", 1, False), ("t2v", 1, True), ("t2v", 1, False),
                     ("plain", 2, True), ("plain", 2, False), ("t2v", 2, True), ("t2v", 2, False)]
    timed = [r for r in results["t2v"] if not r["warmup"]]
    assert [r["run"] for r in timed] == [0, 1] and not any(r["switch"] for r in timed)


def test_default_runs_graph_after_graph(monkeypatch):
    order = fake_runs(monkeypatch)
    e2e.run_all(None, None, {"plain": {}, "t2v": {}}, warmup=1, runs=2, timeout=1, interleave=False)
    assert order == [("plain", 0, False), ("plain", 1, False), ("plain", 2, False),
                     ("t2v", 0, False), ("t2v", 1, False), ("t2v", 2, False)]
