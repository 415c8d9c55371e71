"""Rankings of the coresets of one agreement run (experiments/agreement/agreement_images.sh) by accuracy, NLL, agreement, TV
and predictive KL, per evaluated posterior (w = 1 and w = N/M), with Kendall's tau between the accuracy ranking and
each agreement-side ranking. Prints markdown.

    python experiments/agreement/agreement_rankings.py runs/agreement-fmnist/report.json
"""

from __future__ import annotations

import itertools
import json
import sys

HIGHER = {"accuracy": True, "agreement": True, "nll": False, "tv": False, "predictive_kl": False}


def kendall_tau(a: list[str], b: list[str]) -> float:
    """Kendall's tau between two orderings of the same items (1: same order, -1: reversed)."""
    pos_a, pos_b = {m: i for i, m in enumerate(a)}, {m: i for i, m in enumerate(b)}
    pairs = list(itertools.combinations(a, 2))
    if not pairs:
        return float("nan")  # one method: no order to compare
    score = sum(1 if (pos_a[x] - pos_a[y]) * (pos_b[x] - pos_b[y]) > 0 else -1 for x, y in pairs)
    return score / len(pairs)


def main(path: str) -> None:
    rows = [r for r in json.load(open(path))["rows"] if r["method"] != "full data" and r.get("agreement")]
    print("| evaluated posterior | ranked by | order (best first) | Kendall tau with accuracy |")
    print("|---|---|---|---|")
    for protocol in sorted({r["protocol"] for r in rows}):
        group = [r for r in rows if r["protocol"] == protocol]
        orders = {
            k: [r["method"] for r in sorted(group, key=lambda r: r[k]["mean"], reverse=up)] for k, up in HIGHER.items()
        }
        for key, order in orders.items():
            tau = kendall_tau(orders["accuracy"], order)
            print(f"| {protocol} | {key} | {' > '.join(order)} | {tau:+.2f} |")


if __name__ == "__main__":
    main(sys.argv[1])
