"""Print the results of scripts/benchmark.sh as one Markdown table.

The input has one JSON object per line: a measured process (crawler, process,
cpu_seconds, peak_rss_mb) or a crawl summary (crawler, summary, pages, seconds, and
links for Open Ahrefs or links_extracted for the others). Open Ahrefs' crawlers are
named "ours-<broker>", and the first of them is the reference of the ratio columns and
of the page count check.
"""

import argparse
import json
import sys

NAMES = {"spider": "spider crate", "scrapy": "Scrapy"}


def display_name(crawler):
    if crawler.startswith("ours-"):
        return f"Open Ahrefs, {crawler.removeprefix('ours-')} broker"
    return NAMES.get(crawler, crawler)


def load(path):
    processes, summaries = {}, {}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            row = json.loads(line)
            if row.get("summary"):
                summaries[row["crawler"]] = row
            else:
                processes.setdefault(row["crawler"], []).append(row)
    return processes, summaries


def check(crawler, summary, reference, reference_pages, tolerance):
    """Return why a crawl's speed does not count, or "ok"."""
    if summary.get("exit_status", 0) != 0:
        return f"failed or timed out (exit status {summary['exit_status']})"
    if crawler.startswith("ours-"):
        api_pages = summary.get("api", {}).get("urls_fetched")
        if api_pages is not None and api_pages != summary["pages"]:
            return f"API reports {api_pages} pages, PostgreSQL {summary['pages']}"
    if crawler == reference:
        return "ok (reference)"
    if reference_pages is None:
        return "not checked: Open Ahrefs did not run"
    missing = reference_pages - summary["pages"]
    if missing > reference_pages * tolerance:
        return f"misconfigured: {missing} pages fewer than ours"
    if summary.get("pages_not_received"):
        return f"{summary['pages_not_received']} pages not counted"
    return "ok"


def ratio(value, reference):
    if not reference:
        return ""
    return f"{value / reference:.2f}x"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="the results.jsonl file of scripts/benchmark.sh")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.001,
        help="fraction of our page count that another crawler may miss and still count",
    )
    args = parser.parse_args()
    processes, summaries = load(args.results)

    totals = {}
    for crawler, summary in summaries.items():
        rows = processes.get(crawler, [])
        seconds = summary["seconds"] or float("nan")
        totals[crawler] = {
            "pages": summary["pages"],
            "pages_per_second": summary["pages"] / seconds,
            "cpu": sum(row["cpu_seconds"] for row in rows),
        }
    reference_name = next((name for name in summaries if name.startswith("ours-")), None)
    reference = totals.get(reference_name)

    header = [
        "crawler",
        "process",
        "pages",
        "pages/s",
        "links",
        "CPU s",
        "peak RSS MB",
        "pages/s vs ours",
        "CPU s vs ours",
        "pages per CPU s",
        "check",
    ]
    table = [header]
    for crawler in summaries:
        summary, total = summaries[crawler], totals[crawler]
        if crawler.startswith("ours-"):
            links = f"{summary['links']} stored"
        else:
            links = f"{summary['links_extracted']} extracted"
        process_rows = processes.get(crawler, [])
        peak = max((row["peak_rss_mb"] for row in process_rows), default=0.0)
        table.append(
            [
                display_name(crawler),
                "all" if len(process_rows) > 1 else process_rows[0]["process"],
                str(total["pages"]),
                f"{total['pages_per_second']:.1f}",
                links,
                f"{total['cpu']:.1f}",
                f"{peak:.1f} (largest)" if len(process_rows) > 1 else f"{peak:.1f}",
                ratio(total["pages_per_second"], reference and reference["pages_per_second"]),
                ratio(total["cpu"], reference and reference["cpu"]),
                f"{total['pages'] / total['cpu']:.1f}" if total["cpu"] else "",
                check(crawler, summary, reference_name, reference and reference["pages"], args.tolerance),
            ]
        )
        if len(process_rows) > 1:
            for row in process_rows:
                table.append(
                    ["", row["process"], "", "", "", f"{row['cpu_seconds']:.1f}", f"{row['peak_rss_mb']:.1f}"]
                    + [""] * 4
                )

    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for index, row in enumerate(table):
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return 0


if __name__ == "__main__":
    sys.exit(main())
