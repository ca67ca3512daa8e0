"""Benchmarks of quilt-verify itself: the suite's own cost, evidence-capture overhead, and the
control plane at scale. Run ``python -m benchmarks`` from a checkout; results are measurements
written as JSON (``benchmarks/results/``), never timed assertions in tests."""
