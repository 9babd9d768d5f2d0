"""`gpu-analytics cluster demo-hpa` (make demo-hpa): the Locust HPA demo against a cluster,
recorded. record.py reads what a run records, timeline.py merges it into rows, report.py
summarizes and plots, runner.py runs it.

It port-forwards the processor's Service, runs `loadtest/` (users.py and the `HpaDemo` shape)
headless with `--csv`, polls `kubectl get hpa,deployment -o json` every `interval` seconds
during the load and after it (until the HPA is back at its minimum, or `settle` seconds), and
writes to the output folder:

| file | what |
|---|---|
| `run.json` | what ran: context, namespace, HPA, start and end of the load, exit codes |
| `polls.jsonl` | each poll as kubectl printed it: `{"time": epoch s, "output": <List>}` |
| `locust_stats_history.csv` | Locust's own history (one `Aggregated` row a second is read) |
| `timeline.csv` | one row per poll: users, RPS, p95, CPU against target, replicas |
| `summary.json`, `summary.txt` | time to first scale-up, peak replicas, time back to minimum |
| `replicas.png` | replicas against load |

The parsing, merging and summary are pure functions over those files, tested without a cluster
on output in the tools' exact formats (tests/loadtest/testdata/demo-hpa/: kubectl's recorded
from the cluster simulation's API server and HPA controller, Locust's from a real run, and a
whole run generated in those formats); `render` rebuilds the report from the raw record.
"""
