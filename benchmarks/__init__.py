"""Side-by-side measurements against the anchors; results recorded in benchmarks/RESULTS.md."""
