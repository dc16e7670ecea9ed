"""Benchmarks of lakebase-spark against its anchors: ``python -m bench`` from the repository root.

One command starts the local Lakebase emulator (a real Postgres 15 over TLS), generates the data in
Postgres, runs eight cases side by side with their baselines and writes ``bench/results.md``,
``bench/results.json`` and ``bench/scaling.png``. Machines are noisy, so what counts is the ratio of
two sides measured in the same run, interleaved and repeated; absolute times are context only.

Modules: :mod:`.config` (sizes), :mod:`.env` (emulator, Spark, options), :mod:`.data` (tables),
:mod:`.measure` (interleaving, medians), :mod:`.results` (what a case reports), :mod:`.cases` (the eight
cases), :mod:`.readjob` (a read in its own Spark process, for memory), :mod:`.report` (the outputs).
"""
