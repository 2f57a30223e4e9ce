"""`python -m bench`: qbproxy's benchmark harness (see README, "Benchmark")."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import trace as tr
from bench.contenders import NAMES

DESCRIPTION = """\
Compare Intuit direct, nginx proxy_cache and qbproxy on the traffic AI chat assistants
send to QuickBooks Online, in one run, against an in-process fake Intuit (realistic latency,
Intuit's per-realm rate limits). Without a command it runs `chat` with the standard
settings and prints the table. qbproxy runs twice in `chat`: refreshing expired or purged
tables by CDC (qbproxy) and reloading them whole (qbproxy-reload, QBPROXY_SYNC_CDC=false).

  chat     replay a seeded chat trace (many realms; sessions of about ten questions in five
           minutes, compressed by --time-scale; lists, open invoices, payments by date,
           entity reads, GET ?query= and POST application/text, several minorversions; a
           share of writes) against each contender, each in front of a freshly seeded fake
           Intuit. Reports upstream calls (the fake's own log) and the reduction against
           direct, read latency p50/p95/p99 split by cache hit and miss, throughput, 429s,
           upstream calls by purpose (CDC calls apart from table-load pages; qbproxy's
           calls against qbproxy-reload's), and stale reads (data older than a write that
           completed before the read began, checked against the fake's history). Writes
           chat.json, chat.md and, with matplotlib, chat-latency.png under --out.
  assistant  replay a seeded trace of what an MCP-style assistant and community connectors
           send (bench/assistant.py): node-quickbooks-style queries over all 27 entities
           (select * / count(*) ... startposition 1 maxresults 1000, reads by id),
           CompanyInfo, Preferences, projections in pages of 100, SELECT *, Sku FROM Item,
           the 12 reports with the parameters assistants send, and ~10% writes across
           entity types each followed by reads of what it changed. Reports upstream calls,
           CorePlus-metered calls apart from writes (CDC labelled: metering unsure), stale
           reads of entities (SyncTokens against the fake's history) and of reports (each
           body against the report recomputed from the fake's write journal), hit and miss
           latency. Writes assistant.json and assistant.md under --out.
  hitpath  closed-loop load on cached traffic only (a 100-entity query page and entity
           reads) at several concurrencies, qbproxy against nginx serving the same bytes,
           with wrk when installed (else an aiohttp client); and the same page from tables
           of 1,000 and 100,000 rows. Writes hitpath.json and hitpath.md.
  memory   the in-process answer memory alone (no servers): RSS against what it counts
           with 1M small answers and under distinct huge keys, and the event-loop time of
           a purge with 1M answers held. Writes memory.json.
"""

EPILOG = """\
examples:
  python -m bench                                   # the standard chat comparison
  python -m bench chat --save-trace t.json          # keep the trace to replay it later
  python -m bench chat --trace t.json --contenders qbproxy
  python -m bench chat --realms 2 --sessions 4 --latency-ms 50 --time-scale 0.01
  python -m bench assistant                         # the assistant trace, same contenders
  python -m bench assistant --realms 2 --sessions 4 --time-scale 0.01 --contenders direct,qbproxy
  python -m bench hitpath --concurrency 1,8,32 --duration 5
  python -m bench memory --answers 1000000

nginx: Debian/Ubuntu `apt-get install -y nginx-light wrk` (make bench does it); without
nginx the harness reports the contender as unavailable and goes on.
"""


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in NAMES:
            raise argparse.ArgumentTypeError(f"unknown contender {name!r} (from {NAMES})")
    return names


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated integers expected: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("values must be >= 1")
    return values


def _env(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.startswith("QBPROXY_"):
        raise argparse.ArgumentTypeError("expected QBPROXY_<SECTION>_<KEY>=value")
    return key, value


def _add_proxy_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dsn",
        help="Postgres server for qbproxy (a fresh database is created on it and dropped "
        "after); default: an embedded Postgres in a temporary directory",
    )
    p.add_argument(
        "--qbproxy-workers",
        type=int,
        help="QBPROXY_SERVER_WORKERS for qbproxy serve (default: qbproxy's own default)",
    )
    p.add_argument(
        "--qbproxy-env",
        type=_env,
        action="append",
        default=[],
        metavar="QBPROXY_X_Y=V",
        help="more environment for qbproxy serve, both variants (repeatable; "
        "QBPROXY_SYNC_CDC is the variant's own)",
    )
    p.add_argument("--out", type=Path, default=Path("bench/results"), help="report directory")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="{chat,assistant,hitpath,memory}")
    chat = commands.add_parser(
        "chat",
        help="replay chat traffic against direct, nginx, qbproxy and qbproxy-reload",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_replay_options(chat)
    assistant = commands.add_parser(
        "assistant",
        help="replay MCP-assistant traffic (all entities, reports, writes) side by side",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_replay_options(assistant)

    return _add_hitpath(commands, parser)


def _add_replay_options(chat: argparse.ArgumentParser) -> None:
    d = tr.TraceParams()
    chat.add_argument("--realms", type=int, default=d.realms, help="companies in the trace")
    chat.add_argument("--sessions", type=int, default=d.sessions, help="chat sessions")
    chat.add_argument(
        "--questions", type=int, default=d.questions, help="questions per session (about)"
    )
    chat.add_argument("--seed", type=int, default=d.seed, help="trace and data seed")
    chat.add_argument(
        "--write-share", type=float, default=d.write_share, help="share of questions that write"
    )
    chat.add_argument(
        "--window", type=float, default=d.window_seconds, help="sessions start within (s)"
    )
    chat.add_argument(
        "--session-seconds", type=float, default=d.session_seconds, help="span of one session"
    )
    chat.add_argument("--customers", type=int, default=d.customers_per_realm, help="per realm")
    chat.add_argument("--invoices", type=int, default=d.invoices_per_realm, help="per realm")
    chat.add_argument("--payments", type=int, default=d.payments_per_realm, help="per realm")
    chat.add_argument("--latency-ms", type=float, default=300.0, help="fake Intuit latency")
    chat.add_argument(
        "--latency-jitter-ms",
        type=float,
        default=argparse.SUPPRESS,
        help="± uniform (default: a third of --latency-ms)",
    )
    chat.add_argument(
        "--time-scale",
        type=float,
        default=0.1,
        help="multiplies the trace clock (0.1: ten times faster; 0: back to back)",
    )
    chat.add_argument(
        "--cache-ttl",
        type=float,
        default=None,
        help="cache validity of nginx and qbproxy, seconds (default: 300 x time-scale)",
    )
    chat.add_argument("--trace", type=Path, help="replay this saved trace instead")
    chat.add_argument("--save-trace", type=Path, help="save the trace to this JSON file")
    chat.add_argument(
        "--contenders", type=_names, default=list(NAMES), help="comma-separated subset"
    )
    _add_proxy_options(chat)


def _add_hitpath(commands: Any, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    hit = commands.add_parser(
        "hitpath",
        help="closed-loop throughput on cached traffic, qbproxy vs nginx",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    hit.add_argument("--concurrency", type=_ints, default=[1, 8, 32], help="connections")
    hit.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    hit.add_argument(
        "--sizes",
        type=_ints,
        default=[1000, 100000],
        help="table sizes; the first gets every concurrency, the others one",
    )
    hit.add_argument(
        "--entity", default="Customer", help="the entity whose table is sized, paged and read"
    )
    hit.add_argument(
        "--client", choices=("auto", "wrk", "aiohttp"), default="auto", help="load generator"
    )
    hit.add_argument(
        "--contenders",
        type=_names,
        default=["nginx", "qbproxy"],
        help="comma-separated subset of nginx,qbproxy",
    )
    _add_proxy_options(hit)

    mem = commands.add_parser(
        "memory",
        help="answer memory: purge cost with 1M answers, RSS against the budget",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    mem.add_argument("--answers", type=int, default=1_000_000, help="small answers held")
    mem.add_argument("--realms", type=int, default=1000, help="realms (x 3 tables each)")
    mem.add_argument("--huge-keys", type=int, default=2000, help="distinct huge query texts")
    mem.add_argument("--huge-key-chars", type=int, default=90_000, help="characters each")
    mem.add_argument(
        "--huge-budget", type=int, default=1024 * 1024, help="memory_bytes for the huge keys"
    )
    mem.add_argument("--out", type=Path, default=Path("bench/results"), help="report directory")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    command = " ".join(["python -m bench", shlex.join(args_list)]).strip()
    if not args_list or args_list[0] not in (
        "chat",
        "assistant",
        "hitpath",
        "memory",
        "-h",
        "--help",
    ):
        args_list = ["chat", *args_list]  # no command: the standard chat comparison
    args = parser.parse_args(args_list)
    if args.command == "hitpath":
        from bench.hitpath import HitpathOptions, run_hitpath
        from bench.hitpath import markdown as hit_markdown

        hit_options = HitpathOptions(
            concurrency=args.concurrency,
            duration=args.duration,
            sizes=args.sizes,
            entity=args.entity,
            client=args.client,
            contenders=[n for n in args.contenders if n != "direct"],
            out_dir=args.out,
            dsn=args.dsn,
            qbproxy_workers=args.qbproxy_workers,
            qbproxy_env=dict(args.qbproxy_env),
            command=command,
        )
        result = asyncio.run(run_hitpath(hit_options))
        print(hit_markdown(result))
        for path in result.get("files", []):
            print(f"wrote {path}")
        return 0

    if args.command == "memory":
        from bench.memory import MemoryOptions, run_memory
        from bench.memory import markdown as memory_markdown

        memory_report = run_memory(
            MemoryOptions(
                answers=args.answers,
                realms=args.realms,
                huge_keys=args.huge_keys,
                huge_key_chars=args.huge_key_chars,
                huge_budget=args.huge_budget,
                out_dir=args.out,
                command=command,
            )
        )
        print(memory_markdown(memory_report))
        for path in memory_report.get("files", []):
            print(f"wrote {path}")
        return 0

    from bench.chat import ChatOptions, run_assistant, run_chat
    from bench.report import chat_markdown
    from bench.report_assistant import markdown as assistant_markdown

    try:
        params = tr.TraceParams(
            realms=args.realms,
            sessions=args.sessions,
            questions=args.questions,
            seed=args.seed,
            write_share=args.write_share,
            window_seconds=args.window,
            session_seconds=args.session_seconds,
            customers_per_realm=args.customers,
            invoices_per_realm=args.invoices,
            payments_per_realm=args.payments,
        )
    except ValueError as exc:
        parser.error(str(exc))
    if args.time_scale < 0:
        parser.error("--time-scale must be >= 0")
    options = ChatOptions(
        trace=params,
        trace_file=args.trace,
        save_trace=args.save_trace,
        latency_ms=args.latency_ms,
        latency_jitter_ms=getattr(args, "latency_jitter_ms", args.latency_ms / 3),
        time_scale=args.time_scale,
        cache_ttl_seconds=args.cache_ttl,
        contenders=args.contenders,
        out_dir=args.out,
        dsn=args.dsn,
        qbproxy_workers=args.qbproxy_workers,
        qbproxy_env=dict(args.qbproxy_env),
        progress=not args.no_progress,
        command=command,
    )
    if args.command == "assistant":
        report = asyncio.run(run_assistant(options))
        print()
        print(assistant_markdown(report))
    else:
        report = asyncio.run(run_chat(options))
        print()
        print(chat_markdown(report))
    for path in report.get("files", []):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
