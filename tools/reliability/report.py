"""``docs/reliability.md`` from ``docs/reliability.json``: every scenario, how it is tested, the
figures the runs measured, and the outcome of its tests. Nothing here is typed in by hand:
a figure that was not measured shows as "not measured"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.reliability.figures import DEFAULT_PATH, load

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"

Figures = dict[str, Any]


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.0f} ms"


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _fuzz_api(f: Figures) -> str:
    codes = {}
    for by_code in f["by_rpc"].values():
        for code, n in by_code.items():
            codes[code] = codes.get(code, 0) + n
    spread = ", ".join(f"{code} {_n(n)}" for code, n in sorted(codes.items()))
    return (
        f"{_n(f['inputs_tried'])} requests over {len(f['by_rpc'])} RPCs ({spread}); "
        f"UNKNOWN/INTERNAL: {f['unknown_or_internal']}"
    )


def _fuzz_ingest(f: Figures) -> str:
    parts = ", ".join(f"{k} {v}" for k, v in f["outcomes"].items())
    return f"{_n(f['inputs_tried'])} mutated files ({parts}); half-written layers: {f['half_written_layers']}"


def _geometry(f: Figures) -> str:
    scored = sum(1 for v in f["outcomes"].values() if v == "score")
    return f"{f['cases']} shapes: {scored} scored, {f['cases'] - scored} clear INVALID_ARGUMENT; 0 other outcomes"


def _overload(f: Figures) -> str:
    return (
        f"capacity {_n(f['capacity_rps'])} req/s uncached at cap {f['concurrency_cap']} "
        f"(p99 {_ms(f['baseline_p99_s'])}); "
        f"offered {_n(f['offered_rps'])} req/s for {f['seconds_per_phase']:g} s ({_n(f['offered_calls'])} calls): "
        f"{_n(f['accepted'])} accepted (p50 {_ms(f['accepted_p50_s'])}, p99 {_ms(f['accepted_p99_s'])}), "
        f"{_n(f['rejected'])} RESOURCE_EXHAUSTED (p99 {_ms(f['rejected_p99_s'])}), other codes "
        f"{sum(v for k, v in f['codes'].items() if k not in ('OK', 'RESOURCE_EXHAUSTED'))}; "
        f"health {f['health_checks'] - f['health_failures']}/{f['health_checks']} SERVING "
        f"(max {_ms(f['health_max_s'])}); "
        f"wrong answers {f['mismatches']}"
    )


def _soak(f: Figures) -> str:
    return (
        f"{_n(f['requests'])} mixed requests in {f['seconds']:.0f} s "
        f"({_n(f['rps'])} req/s, {f['concurrency']} in flight); "
        f"unexpected outcomes {f['unexpected']}; RSS {f['rss_start_mib']:.0f} → max {f['rss_max_mib']:.0f} MiB "
        f"(+{f['rss_growth_after_warmup_mib']:.1f} after warm-up, "
        f"+{f['rss_growth_second_half_mib']:.1f} in the second half); "
        f"fds {min(f['fds'])}–{max(f['fds'])}, threads {min(f['threads'])}–{max(f['threads'])}; "
        f"same answer before and after: {'yes' if f['same_answer_before_and_after'] else 'NO'}"
    )


def _redis(test: str) -> Callable[[Figures], str]:
    def render(f: Figures) -> str:
        entry = f.get(test)
        if entry is None:
            return "not measured"
        return (
            f"{_n(entry['calls'])} calls ({_n(entry['cached'])} cached), errors {entry['errors']}, "
            f"wrong answers {entry['mismatches']}, p99 {_ms(entry['p99_s'])}"
        )

    return render


def _feed(f: Figures) -> str:
    parts = [
        f"{mode}: {_n(f[mode]['calls'])} calls, {f[mode]['errors']} errors, {f[mode]['wrong']} wrong, "
        f"{f[mode]['polls']} polls"
        for mode in ("hang", "error", "garbage", "empty")
        if mode in f
    ]
    return "; ".join(parts)


def _activation(f: Figures) -> str:
    return f"{_n(f['calls'])} calls across {f['activations']} activations, errors {f['errors']}"


def _sigterm(f: Figures) -> str:
    return (
        f"{_n(f['ok_before_signal'])} OK before SIGTERM, {f['ok_after_signal']} finished in the drain, "
        f"{f['refused_unprocessed']} refused unprocessed (UNAVAILABLE/CANCELLED), "
        f"{f['failed_before_signal']} failed before the signal, {f['other_codes']} other codes; exit 0"
    )


def _determinism(f: Figures) -> str:
    return f"{f['requests']} calls (every RPC) × {f['processes']} processes: {f['differing']} differ"


def _consistency(f: Figures) -> str:
    return f"{_n(f['answers'])} answers during {f['activations']} activations: {f['mixed']} mixed, {f['errors']} errors"


def _hostile_polyline(f: Figures) -> str:
    return (
        f"{f['calls']} × {f['megabytes']:g} MB refused, INVALID_ARGUMENT naming the field; server RSS "
        f"{f['rss_before_mib']:.0f} MiB, +{f['rss_growth_mib']:.0f} MiB after them (bound {f['limit_mib']}), "
        f"peak +{f['peak_growth_mib']:.0f} MiB while they ran"
    )


def _hostile_geojson(f: Figures) -> str:
    codes = ", ".join(f"{rpc} {code}" for rpc, code in sorted(f["codes"].items()))
    return f"depth {f['depth']:,}: {codes}"


def _codes(codes: dict[str, int]) -> str:
    return ", ".join(f"{_n(n)} {code}" for code, n in sorted(codes.items()))


def _unfinished_unauthenticated(f: Figures) -> str:
    return (
        f"{f['streams']} stalled streams ended: {_codes(f['codes'])}; meanwhile health {f['health']}, "
        f"another tenant's call {f['other']}"
    )


def _unfinished_one_tenant(f: Figures) -> str:
    return (
        f"{f['streams']} stalled streams of one tenant at a cap of {f['cap']}: another tenant's call "
        f"{f['other']}, the same tenant's {f['same_tenant']}"
    )


def _unfinished_read_timeout(f: Figures) -> str:
    return f"{f['streams']} stalled streams, read timeout {f['timeout_s']:g} s: {_codes(f['codes'])}"


@dataclass(frozen=True)
class Scenario:
    key: str  # figures key in reliability.json ("" when the tests record no figures)
    title: str
    how: str
    tests: tuple[str, ...]  # test files or file::function (the outcome column)
    render: Callable[[Figures], str] | None = None
    variant: str = "ci"  # which figures of ``key`` to show (redis: a dict per test)


REDIS = "tests/service/test_redis_faults.py"
SCENARIOS = [
    Scenario(
        "fuzz-api",
        "Fuzzed API: every RPC, valid-looking and hostile messages",
        "hypothesis through a real channel: random and non-finite coordinates, polylines of random "
        "characters, wrong GeoJSON, extreme timestamps, speeds and dwells, unknown enum numbers, "
        "random cells and page tokens; never UNKNOWN/INTERNAL, every INVALID_ARGUMENT's fields exist "
        "in the request",
        ("tests/test_fuzz_api.py",),
        _fuzz_api,
    ),
    Scenario(
        "fuzz-ingest",
        "Fuzzed ingest: incident files, SESNSP CSV, CBP JSON and XML",
        "real fixture files mutated (flips, cuts, insertions, lines repeated/dropped) through "
        "`layers build` and the CBP parsers + admin RPC; plus the cell-level garbage tests",
        (
            "tests/test_fuzz_ingest.py",
            "tests/geodata/test_ingest.py::test_garbage_in_a_cell_only_ever_raises_invalid_incident_file",
            "tests/geodata/test_cbp.py::test_arbitrary_bytes_parse_or_raise_invalid_feed",
        ),
        _fuzz_ingest,
    ),
    Scenario(
        "hostile-polyline",
        "A 50 MB encoded polyline",
        "`routerisk serve` subprocess; ScoreRoute with a 50 MB `encoded_polyline` / `encoded_polyline6`, 4 "
        "times, each from its own connection; RSS read from /proc once the calls settled. Bound: a "
        "polyline longer than 16 characters × `ROUTERISK_MAX_ROUTE_POINTS` is refused by its length "
        "before anything is decoded; the failed call ends without the exception cycle that kept the "
        "request alive; RSS growth under 80 MiB",
        (
            "tests/service/test_bounded_input.py::test_a_50_mb_polyline_is_refused_without_growing_the_server",
            "tests/geodata/test_route.py::test_polyline_length_is_checked_before_anything_is_decoded",
        ),
        _hostile_polyline,
    ),
    Scenario(
        "hostile-geojson",
        "A GeoJSON route nested 1,000 levels deep, on every RPC that takes a route",
        "ScoreRoute, BatchScoreRoutes (one bad item among good ones), CompareRoutes, SuggestDepartures, "
        "MonitorTrip through a real channel. Bound: GeoJSON text is scanned before `json.loads` (no "
        "Python objects): at most 64 levels, 1 MiB + 256 characters and 100,000 + 8 brackets/commas per "
        "allowed point; INVALID_ARGUMENT naming the field, the batch's other items scored",
        (
            "tests/service/test_bounded_input.py::test_a_deeply_nested_geojson_route_is_invalid_argument_on_every_rpc",
            "tests/geodata/test_route.py::test_deep_geojson_is_refused_as_a_caller_error",
            "tests/geodata/test_route.py::test_geojson_size_and_value_count_are_checked_before_parsing",
        ),
        _hostile_geojson,
    ),
    Scenario(
        "unfinished-unauthenticated",
        "90 unfinished requests without an API key",
        "raw HTTP/2 (`h2`) to the server with API keys on: 90 streams on one connection send their "
        "headers and 2 bytes of a 1,000-byte message, then wait; then a health check and another "
        "tenant's call through a gRPC channel. Bound: asyncio server, authentication checked on the "
        "headers before the message is read: each stream gets UNAUTHENTICATED at once and holds no "
        "thread; health and the API answer (the thread server held a handler thread per stream: "
        "both timed out)",
        (
            "tests/service/test_unfinished_requests.py::test_unauthenticated_unfinished_calls_are_refused_and_starve_nothing",
        ),
        _unfinished_unauthenticated,
    ),
    Scenario(
        "unfinished-one-tenant",
        "One tenant's unfinished requests, as many as the concurrency cap",
        "16 such streams with one tenant's key, `ROUTERISK_MAX_CONCURRENT_RPCS=16`; then calls of another "
        "tenant and of the same one. Bound: the concurrency slot (global and the tenant's, "
        "`ROUTERISK_MAX_CONCURRENT_RPCS_PER_TENANT`) is taken only once the request is complete: "
        "both answered (the thread server took it on arrival: RESOURCE_EXHAUSTED for everyone)",
        (
            "tests/service/test_unfinished_requests.py::test_one_tenants_unfinished_calls_hold_no_concurrency_slot",
            "tests/service/test_unfinished_requests.py::test_concurrency_slots_are_capped_per_tenant_and_globally",
            "tests/service/test_unfinished_requests.py::test_without_authentication_only_the_global_cap_applies",
            "tests/service/test_unfinished_requests.py::test_the_tenant_cap_defaults_to_half_the_global_one",
        ),
        _unfinished_one_tenant,
    ),
    Scenario(
        "unfinished-read-timeout",
        "A request message never completed",
        "3 such streams with a valid key. Bound: the call ends with DEADLINE_EXCEEDED once "
        "`ROUTERISK_REQUEST_READ_TIMEOUT_SECONDS` (10 s; 0.5 s in the test) or the call's own deadline "
        "passed; connections idle for `ROUTERISK_MAX_CONNECTION_IDLE_MS` are closed, old ones after "
        "`ROUTERISK_MAX_CONNECTION_AGE_MS`",
        ("tests/service/test_unfinished_requests.py::test_a_request_never_completed_ends_at_the_read_timeout",),
        _unfinished_read_timeout,
    ),
    Scenario(
        "",
        "Error details never echo megabytes back",
        "5,000 bad stops in one ScoreRoute (10,000 violations); a 1 MB description. Bound: each field and "
        "description cut to 200 characters with its length said, at most 100 violations and 4,000 "
        "characters listed (the rest counted), the message 500: under gRPC's 8 KiB metadata limit",
        (
            "tests/service/test_bounded_input.py::test_a_request_with_thousands_of_mistakes_gets_a_bounded_bad_request",
            "tests/service/test_bounded_input.py::test_what_a_bad_request_repeats_of_a_value_is_capped",
        ),
    ),
    Scenario(
        "",
        "`score-batch`: formula-injection ids, nested GeoJSON and JSONL rows",
        "the CLI as a subprocess: ids `=HYPERLINK(...)`, `+cmd...`, `@SUM(...)`, `-2+3+cmd...` (DDE payloads), tab and "
        "carriage return; a CSV route cell nested 1,000 deep; JSONL rows nested 5,000 deep. Bound: CSV text "
        "cells starting with = + - @ tab CR get a leading `'` (numbers stay numbers); JSONL lines and CSV "
        "cells at most the longest route's size, rows 64 levels deep; a bad row is a bad row (exit 2)",
        (
            "tests/test_cli_batch.py::test_csv_output_neutralises_formulas_and_a_nested_geojson_row_is_a_bad_row",
            "tests/test_cli_batch.py::test_jsonl_rows_nested_deep_are_bad_rows_and_the_others_are_scored",
        ),
    ),
    Scenario(
        "",
        "CBP feeds: deep, huge, a DTD hidden in UTF-16",
        "XML and JSON nested 100,000 deep, a feed over 16 MiB, an entity declaration in a UTF-16 document, "
        "a deep historical export. Bound: size checked first; XML through expat with DTDs refused in any "
        "encoding and at most 32 levels; JSON scanned before parsing",
        (
            "tests/geodata/test_cbp.py::test_deep_or_huge_feeds_are_refused_before_they_are_read",
            "tests/geodata/test_cbp.py::test_a_dtd_is_refused_in_any_encoding",
            "tests/geodata/test_cbp.py::test_deep_historical_json_is_refused",
        ),
    ),
    Scenario(
        "geometry-edges",
        "Geometry edge cases",
        "through the server: antimeridian, over and at the poles, pentagons (res 8 and 0), zero-length "
        "segments, identical and antipodal points, a zig-zag, round the world, 100,000 points (line and "
        "polyline6), 100,001 points; cell chains of the same shapes in test_cells.py",
        ("tests/geodata/test_geometry_edges.py", "tests/geodata/test_cells.py"),
        _geometry,
    ),
    Scenario(
        "overload",
        "Overload at twice the capacity",
        "`routerisk serve` subprocess, cap 4, no cache; capacity measured closed loop, then 2× offered open "
        "loop (grpc.aio, 127.0.0.1, at most 64 calls in flight; offered again at 4× and 8× if nothing was "
        "refused) with a health probe every 100 ms; every call must end OK or RESOURCE_EXHAUSTED",
        (
            "tests/test_reliability_load.py::test_twice_the_capacity_is_shed_quickly_and_health_answers",
            "tests/service/test_auth_limits.py::test_concurrency_cap_sheds_quickly_and_health_answers",
            "tests/service/test_auth_limits.py::test_calls_refused_or_abandoned_before_they_run_give_their_slot_back",
        ),
        _overload,
    ),
    Scenario(
        "soak",
        "Soak: mixed requests against one server",
        "ScoreRoute cached and uncached, batches, comparisons, cells, hotspots, crossings, invalid "
        "requests; RSS, fds and threads of the server read from /proc",
        ("tests/test_reliability_load.py::test_soak_of_mixed_requests_keeps_resources_flat",),
        _soak,
    ),
    Scenario(
        "redis-faults",
        "Redis stopped and restarted under load",
        "private redis-server killed and started while 4 clients score; answers compared with a server without Redis",
        (f"{REDIS}::test_redis_stopped_and_restarted_under_load",),
        _redis("test_redis_stopped_and_restarted_under_load"),
    ),
    Scenario(
        "redis-faults",
        "Redis paused under load",
        "CLIENT PAUSE 1.5 s while 4 clients score",
        (f"{REDIS}::test_redis_paused_under_load",),
        _redis("test_redis_paused_under_load"),
    ),
    Scenario(
        "redis-faults",
        "Redis full under load",
        "maxmemory with noeviction set while 4 clients score",
        (f"{REDIS}::test_redis_out_of_memory_under_load",),
        _redis("test_redis_out_of_memory_under_load"),
    ),
    Scenario(
        "redis-faults",
        "Redis read-only under load",
        "the server's Redis is a read-only replica",
        (f"{REDIS}::test_read_only_replica_under_load",),
        _redis("test_read_only_replica_under_load"),
    ),
    Scenario(
        "",
        "Redis down: feed still polled; Redis restarted empty; two replicas",
        "lease falls back to polling; border revisions survive an emptied Redis; results, layers and "
        "waits shared between replicas",
        (
            f"{REDIS}::test_the_feed_is_still_polled_while_redis_is_down",
            f"{REDIS}::test_border_waits_are_shared_again_after_redis_lost_its_data",
            "tests/test_replicas.py",
        ),
    ),
    Scenario(
        "feed-faults",
        "Border feed hangs, times out, fails, returns garbage or an empty list",
        "the server polls a local feed every 0.1 s while a client scores a route across Laredo; the "
        "poller's timeout on its own; a truncated feed in test_border_api.py",
        (
            "tests/service/test_feed_faults.py",
            "tests/service/test_border_api.py::test_the_server_polls_a_feed_and_survives_a_broken_one",
        ),
        _feed,
    ),
    Scenario(
        "",
        "Attack: a CBP feed that trickles 1 byte every few seconds (before: the poller hung silently; "
        "SIGTERM took 16 s)",
        "bound: the fetch is abandoned at `ROUTERISK_BORDER_FEED_TIMEOUT_SECONDS` (30 s; connect 5 s, read 10 s), "
        "one WARNING line per stall streak without coordinates, the waits loaded before keep serving; SIGTERM "
        "during a stalled poll aborts the fetch (the poller's stop waits at most 2 s): a local trickling "
        "HTTP server on 127.0.0.1, in-process and under `routerisk serve` (exit 0 within 8 s)",
        (
            "tests/service/test_feed_faults.py::test_a_trickling_feed_is_abandoned_at_the_total_timeout_and_the_old_waits_stay",
            "tests/service/test_feed_faults.py::test_the_server_logs_a_stalled_feed_once_and_keeps_serving_the_waits_loaded_before",
            "tests/service/test_feed_faults.py::test_sigterm_during_a_stalled_poll_returns_promptly",
        ),
    ),
    Scenario(
        "",
        "Attack: an admin observation stamped 59 min in the future (before: accepted, served with age -59 min)",
        "bound: more than `ROUTERISK_BORDER_MAX_CLOCK_SKEW_SECONDS` (300 s) ahead of the server's clock, "
        "`LoadBorderObservations` is INVALID_ARGUMENT naming `observations[i].observed_at` and loads nothing; the "
        "feed poller skips such readings one by one and counts them (`routerisk_border_feed_skipped_total`)",
        (
            "tests/service/test_border_api.py::test_an_observation_stamped_in_the_future_is_refused_by_the_admin_rpc",
            "tests/service/test_border_api.py::test_the_feed_skips_and_counts_readings_stamped_in_the_future",
        ),
    ),
    Scenario(
        "",
        "Attack: 70 MonitorTrip streams from one tenant (before: the 64-stream cap was global, other tenants "
        "were refused)",
        "bound: one tenant holds at most `ROUTERISK_MAX_TRIP_STREAMS_PER_TENANT` streams (default half of "
        "`ROUTERISK_MAX_TRIP_STREAMS`), the next gets RESOURCE_EXHAUSTED and the other tenants still open "
        "theirs; API keys of two tenants through a real channel",
        ("tests/service/test_monitor.py::test_one_tenant_at_its_stream_cap_cannot_take_the_other_tenants_streams",),
    ),
    Scenario(
        "",
        "A MonitorTrip stream resumed on another replica; two writers of one trip; Redis unusable",
        "two `routerisk serve` processes on one Redis: half a replayed track on A, the rest on B with the same "
        "trip id: duplicates acknowledged, counts continue, no alert repeated (state TTL "
        "`ROUTERISK_TRIP_STORE_TTL_SECONDS`); a late writer meets the revision check and takes the newer state; "
        "Redis unusable: per replica, one WARNING line",
        (
            "tests/test_replicas.py::test_a_trip_resumed_on_the_other_replica_continues_without_repeated_alerts",
            "tests/service/test_shared_trips.py",
        ),
    ),
    Scenario(
        "layer-activation",
        "Layer activation under load; a broken layer",
        "4 clients score while two layers are activated in turn; a broken ACTIVE leaves the old layer serving",
        (
            "tests/service/test_layers_api.py::test_activation_under_load_loses_no_request",
            "tests/service/test_layers_api.py::test_a_broken_layer_leaves_the_old_one_serving",
        ),
        _activation,
    ),
    Scenario(
        "sigterm",
        "SIGTERM under load (and as PID 1, to a gRPC thread, with workers)",
        "`routerisk serve` subprocess, 6 clients, SIGTERM once every client has an answer (+0.5 s); SIGTERM to "
        "one non-main thread (tgkill)",
        (
            "tests/test_cli.py::test_sigterm_under_load_answers_every_accepted_call",
            "tests/test_cli.py::test_runs_as_pid_1_and_drains_on_sigterm",
            "tests/test_cli.py::test_sigterm_delivered_to_any_thread_drains_and_exits_0",
            "tests/test_cli.py::test_workers_share_one_port_and_drain_together",
        ),
        _sigterm,
    ),
    Scenario(
        "determinism",
        "Same request, same bytes across processes and a restart",
        "two `routerisk serve` processes with other PYTHONHASHSEEDs, one restarted; every RPC, and a "
        "hotspot page token",
        ("tests/test_determinism.py::test_same_requests_same_bytes_across_processes_and_a_restart",),
        _determinism,
    ),
    Scenario(
        "layer-consistency",
        "No answer mixes two layer versions",
        "4 clients while two layers are activated 8 times; each answer compared with the answer of the "
        "layer version it names",
        ("tests/test_determinism.py::test_no_answer_mixes_two_layer_versions",),
        _consistency,
    ),
    Scenario(
        "",
        "A layer with NaN, inf or negative intensities, or no cells, activated",
        "written with valid file hashes, then named in `ACTIVE` (the file watcher) and given to "
        "`layers activate`; bound: refused on load (one log line, "
        "`routerisk_layer_rejected_total`, reason `values` or `empty`), the old layer answers with its scores",
        ("tests/service/test_layer_checks.py::test_bad_values_are_refused_and_the_old_layer_serves",),
    ),
    Scenario(
        "",
        "Layer metadata of the wrong type or range, or not matching its files",
        '`resolution` "8", -1, 16, 8.0, true, null; one bit flipped in `intensity.npy`; a layer without '
        "file hashes whose content is not its version; bound: refused (`metadata`, `hash`), health stays "
        "SERVING on the old layer, which answers",
        (
            "tests/service/test_layer_checks.py::test_metadata_resolution_of_the_wrong_type_or_range_is_refused",
            "tests/service/test_layer_checks.py::test_a_file_that_does_not_match_its_hash_is_refused",
            "tests/service/test_layer_checks.py::test_an_old_layer_without_hashes_is_verified_by_its_content_version",
        ),
    ),
    Scenario(
        "",
        "A layer folder or file that is a symlink out of the store, or a truncated file",
        "a symlinked folder to a layer outside the store, a symlinked `intensity.npy`, a file 4 bytes "
        "short; bound: refused (`path`, `size`) before anything is read, the old layer answers",
        (
            "tests/service/test_layer_checks.py::test_a_layer_folder_that_is_a_symlink_out_of_the_store_is_refused",
            "tests/service/test_layer_checks.py::test_a_layer_file_that_is_a_symlink_out_of_the_store_is_refused",
            "tests/service/test_layer_checks.py::test_a_truncated_file_is_refused",
        ),
    ),
    Scenario(
        "",
        "The served layer's files truncated under a running server",
        "`routerisk serve` as a process; every `.npy` of the active layer cut to its header; bound: the "
        "arrays were read into memory at load (no mapping: no SIGBUS), same answers after, exit 0 on SIGTERM",
        ("tests/service/test_layer_checks.py::test_a_layer_truncated_under_a_running_server_cannot_kill_it",),
    ),
    Scenario(
        "",
        "No valid layer to serve",
        "start with a refused active layer; a bad version, then non-UTF-8 bytes, in the shared Redis "
        "`layers:active` key; bound: NOT_SERVING and UNAVAILABLE until a valid layer is activated (then "
        "SERVING), refused once per version, never a crash; replicas keep their layer",
        (
            "tests/service/test_layer_checks.py::test_without_a_valid_layer_health_is_not_serving_until_one_is_activated",
            "tests/service/test_redis_integrity.py::test_a_bad_layer_named_by_the_shared_key_is_refused",
        ),
    ),
    Scenario(
        "",
        "Garbage, forged or mistyped entries in Redis",
        "garbage bytes and forged answers (raw, checksummed, sealed with another key) in a `score:*` key, "
        "with and without `ROUTERISK_CACHE_HMAC_KEY`; shared border observations of the wrong type, unsealed "
        "or sealed without the key; a MonitorTrip state re-sealed without the key; bound: a miss "
        "(`routerisk_cache_rejected_total`), overwritten, the right answer; observations skipped one by one "
        "(`routerisk_shared_observations_skipped_total`); a planted trip state is no state (the trip starts "
        "over, no alert taken from it). Without a key the seal is a checksum: it stops corruption, not forgery",
        (
            "tests/service/test_redis_integrity.py::test_a_garbage_entry_is_a_miss_counted_and_overwritten",
            "tests/service/test_redis_integrity.py::test_a_forged_entry_is_not_served",
            "tests/service/test_redis_integrity.py::test_shared_observations_of_the_wrong_type_are_skipped_one_by_one",
            "tests/service/test_redis_integrity.py::test_published_observations_are_sealed_and_read_back",
            "tests/service/test_shared_trips.py::test_a_shared_trip_not_sealed_with_the_key_is_no_trip",
        ),
    ),
]


def _outcome(tests: tuple[str, ...], results: dict[str, dict]) -> str:
    matched = [
        r
        for nodeid, r in results.items()
        if any(nodeid == t or nodeid.startswith((t + "::", t + "[")) for t in tests)  # "[": parametrized
    ]
    if not matched:
        return "not run"
    counts: dict[str, int] = {}
    for r in matched:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    return ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))


def _figures(scenario: Scenario, data: dict, variant: str) -> tuple[str, str]:
    entry = data.get("scenarios", {}).get(scenario.key, {})
    if scenario.render is None:
        return "(pass/fail only)", ""
    if scenario.key == "redis-faults":
        shown = {k: v for k, v in entry.items() if isinstance(v, dict)}
        test = next((t.split("::")[1] for t in scenario.tests), "")
        at = shown.get(test, {}).get("measured_at", "")
        return (scenario.render(shown) if test in shown else "not measured"), at
    figures = entry.get(variant)
    if figures is None:
        return "not measured", ""
    try:
        return scenario.render(figures), figures.get("measured_at", "")
    except (KeyError, TypeError, ValueError) as exc:
        return f"figures unreadable ({exc!r}): rerun", ""


def render(data: dict) -> str:
    results = data.get("tests", {})
    test_seconds = sum(r.get("seconds", 0.0) for r in results.values())
    suite = f"{len(results)} tests, {test_seconds:.0f} s of test time (last run)" if results else "not run"
    lines = [
        "# Reliability",
        "",
        "<!-- generated by `python -m tools.reliability report` from docs/reliability.json; do not edit -->",
        "",
        "What routerisk is shown to survive, how, and the figures of the last measured runs. The",
        "figures are written by the runs themselves into `docs/reliability.json`; this page is",
        "rendered from it (`tests/test_reliability_doc.py` fails when it is stale).",
        "",
        "## Commands",
        "",
        "| what | command | time |",
        "|---|---|---|",
        "| every scenario, CI-sized (`.ci/run` runs them in plain `pytest`) | `python -m pytest` | in the suite |",
        f"| the scenarios of this page only, recording their figures | `python -m tools.reliability suite` | {suite} |",
        "| long overload (30 s per phase) | `python -m tools.reliability overload --seconds 30` | ~2 phases |",
        "| long soak (200,000 requests) | `python -m tools.reliability soak --requests 200000` | see its figures |",
        "| re-render this page | `python -m tools.reliability report` (`--check`: fail when stale) | s |",
        "",
        "Load goes to 127.0.0.1 only; every run is bounded in requests and seconds and stops by itself.",
        "Machine: the shared 2-core development VM (client and server on the same cores; another",
        "engineer's benchmarks may run at the same time), so latencies are upper bounds. The overload's",
        "capacity is measured in the same run, on the same server (cap 4, no cache, 100 km routes as",
        "polylines), and twice that is offered; `docs/performance.md` has the serving benchmarks.",
        "Bounds the figures must meet are in `tools/reliability/checks.py`.",
        "",
        "## Scenarios",
        "",
        "| scenario | how it is tested | figures (CI-sized run) | tests (last suite run) |",
        "|---|---|---|---|",
    ]
    for scenario in SCENARIOS:
        figures, _ = _figures(scenario, data, "ci")
        tests = "<br>".join(f"`{t}`" for t in scenario.tests)
        lines.append(
            f"| **{scenario.title}** | {scenario.how}<br>{tests} | {figures} | {_outcome(scenario.tests, results)} |"
        )
    lines += ["", "## Long runs", "", "| scenario | command | figures | measured |", "|---|---|---|---|"]
    for key, command in (
        ("overload", "python -m tools.reliability overload --seconds 30"),
        ("soak", "python -m tools.reliability soak --requests 200000"),
    ):
        scenario = next(s for s in SCENARIOS if s.key == key)
        figures, at = _figures(scenario, data, "long")
        lines.append(f"| {scenario.title} | `{command}` | {figures} | {at or '-'} |")
    failed = sum(1 for r in results.values() if r["outcome"] == "failed")
    lines += [
        "",
        "## Totals",
        "",
        f"- tests in the last suite run: {len(results)}, failed: {failed}",
        f"- {_totals(data)}",
        "",
        "## Bugs these tests found (fixed, each with a regression test)",
        "",
        "- `ScoreRoute` with a tiny positive `average_speed_kmh` (1e-10) made the trip end past year 9999:",
        "  INTERNAL. Now a trip longer than a year is INVALID_ARGUMENT naming the field.",
        "- `GetCellRisk` with a hexadecimal cell beyond 64 bits: INTERNAL (h3 OverflowError). Now",
        "  INVALID_ARGUMENT on `cell`.",
        "- Requests that never finished held the server (found by an outside attack run): the thread",
        "  server gave each call a handler thread as its headers arrived, and the thread waited for the",
        "  message. 90 unauthenticated streams with 2 bytes of a 1,000-byte message timed out health and",
        "  every RPC; 16 with one tenant's key held every concurrency slot. Now the asyncio server",
        "  refuses a call without a key on its headers, takes a slot (global and per tenant) and a",
        "  thread only once the message is complete, and ends an unfinished one at the read timeout.",
        "- The concurrency cap was taken when a handler thread reached a call, so at twice the capacity",
        "  calls queued in the executor (accepted p99 2.3 s after 4 s, growing; some CANCELLED). Now",
        "  calls are admitted as they arrive and the excess is refused without queueing.",
        "- The CI-sized overload failed on a busy machine with CANCELLED answers (119 of 4,797 calls in",
        "  one CI run, 306 in a reproduction beside two busy loops). Which side: the server's gRPC core.",
        "  With `GRPC_TRACE=api,call_error` the server showed those calls cancelled on a core thread",
        "  (`CancelWithError SVR CANCELLED`) right after their headers arrived, never handed to Python",
        "  (no `request_registered_call` for them, no log line); the client never cancelled one. Why:",
        "  the sync server hands calls to Python from one polling thread, and the test's open-loop",
        "  client kept up to 4,000 calls in flight on one connection; when the polling thread fell",
        "  behind, more than 1,000 calls waited in core, whose backlog protection",
        "  (`grpc.server.max_pending_requests`, 1,000 soft / 3,000 hard) then drops new calls with a",
        "  bare CANCELLED. A 30-line server with a slow interceptor shows it at will (3,000 calls at",
        "  once: 703 CANCELLED; with the option at 10,000: none; at 100: 693 of 1,000). Fixed: the",
        "  load client keeps at most 64 calls in flight (it waits for a slot and counts the wait),",
        "  the server limits streams per connection (`ROUTERISK_MAX_STREAMS_PER_CONNECTION`, 256),",
        "  and the check allows OK and RESOURCE_EXHAUSTED only. The offered-rate and latency bounds",
        "  are checked by the long run; the CI run re-offers at a higher rate if the machine sped up",
        "  between phases and nothing was refused. Before: 13 of 27 runs at 4× beside two busy loops",
        "  had CANCELLED (1 to 716 calls). After: 5 CI-sized runs beside two busy loops (load average",
        "  9–12) and every full-suite run since, on a machine shared by several engineers: none.",
        "- `test_sigterm_under_load_answers_every_accepted_call` sent SIGTERM after a fixed 1 s of",
        "  load; on a busy machine no call may have been answered by then, failing the check that",
        "  calls were answered before the signal. It now signals once every client has an answer.",
        "- `layers build` turned a header-only file into an empty layer that scores every route 0. Now",
        "  a file without incidents is rejected.",
        "- A 50 MB `encoded_polyline` was decoded into 8-byte integers before its point count was",
        "  checked (peak +680 MiB), and every failed call's request stayed in memory until the garbage",
        "  collector ran (`abort_with_status` raises an exception that grpc keeps on the call while its",
        "  traceback holds the handler's frames): RSS +100-150 MiB per call, kept. Now the length is",
        "  checked first and errors set the status without raising.",
        "- A GeoJSON route nested ~1,000 deep was INTERNAL (RecursionError in `json.loads`) on every",
        "  RPC that takes a route, the whole batch included; `score-batch` crashed on such a row.",
        '- A request with thousands of bad fields was answered RESOURCE_EXHAUSTED ("received metadata',
        '  size exceeds hard limit", 768,837 bytes vs 16,384): the BadRequest listed every violation.',
        "- A CBP XML feed declaring entities in UTF-16 passed the DTD check; a deeply nested one",
        "  overflowed the recursive reader.",
        "- `score-batch` wrote ids such as `=HYPERLINK(...)` verbatim into its CSV, and an id holding a",
        "  carriage return unquoted (splitting the row).",
        "- `routerisk serve` lost a SIGTERM that the kernel handed to a gRPC thread (the main thread",
        "  blocked in `Event.wait()` never ran the handler) and hung until SIGKILL: seen once as the",
        "  PID 1 test hanging 9 minutes. Now the main thread polls a lock-free flag every 0.2 s.",
        "",
    ]
    return "\n".join(lines)


def _totals(data: dict) -> str:
    scenarios = data.get("scenarios", {})
    tried = sum(scenarios.get(k, {}).get("ci", {}).get("inputs_tried", 0) for k in ("fuzz-api", "fuzz-ingest"))
    calls = 0
    wrong = 0
    for entry in scenarios.get("redis-faults", {}).values():
        if isinstance(entry, dict) and "calls" in entry:
            calls += entry["calls"]
            wrong += entry["mismatches"] + entry["errors"]
    for mode in scenarios.get("feed-faults", {}).get("ci", {}).values():
        if isinstance(mode, dict):
            calls += mode["calls"]
            wrong += mode["wrong"] + mode["errors"]
    for key in ("layer-consistency",):
        entry = scenarios.get(key, {}).get("ci")
        if entry:
            calls += entry["answers"]
            wrong += entry["mixed"] + entry["errors"]
    return (
        f"fuzzed inputs tried: {tried:,}; calls answered under Redis, feed and layer faults: {calls:,}; "
        f"wrong answers or failed accepted calls among them: {wrong}"
    )


def write(path: Path = DEFAULT_PATH, doc: Path = DOC) -> str:
    text = render(load(path))
    doc.write_text(text, encoding="utf-8")
    return text


def is_current(path: Path = DEFAULT_PATH, doc: Path = DOC) -> bool:
    return doc.exists() and doc.read_text(encoding="utf-8") == render(load(path))
