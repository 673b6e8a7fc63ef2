"""The bounds the overload and soak figures must meet (shared by the CI tests and the long runs)."""

from __future__ import annotations

# Overload: "quickly" and "keep their latency" in seconds, on a shared 2-core machine where the
# load generator competes with the server for the CPU. Before admission at arrival
# (service/grpc/limits.py) accepted calls waited in the executor's queue: p50 1.8 s, p99 2.3 s after 4 s
# at 2x, and some were CANCELLED.
# The median is the claim ("keep their latency", "quickly"); the tail bound only catches a queue
# that grows. Other work on this 2-core machine (load average 5 seen) moves p50 to ~0.4 s at times.
ACCEPTED_P50_S = 0.5
REJECTED_P50_S = 0.5
REJECTED_P99_S = 1.5
ACCEPTED_P99_S = 1.5
HEALTH_MAX_S = 1.0
MIN_OFFERED_FACTOR = 1.6  # the client must really have offered (about) twice the capacity

# Soak
RSS_MAX_MIB = 768
RSS_GROWTH_AFTER_WARMUP_MIB = 160  # the result cache (10,000 entries) filling up
RSS_GROWTH_SECOND_HALF_MIB = 24  # once it is full: flat
FD_SPREAD = 4


def overload(f: dict, timed: bool = True) -> None:
    """The overload's outcome; ``timed`` also checks the latency bounds and that the client really
    offered about twice the capacity (the long run only: the suite records those figures but
    asserts nothing that depends on how busy the shared machine is).

    Every call ends OK or RESOURCE_EXHAUSTED: no other code is allowed. The CANCELLED answers
    once seen here were gRPC core shedding calls its pending queue held past 1,000 (see
    ``open_loop`` and docs/reliability.md); the client's in-flight bound and the server's
    per-connection stream limit keep that queue far below it."""
    assert f["client_problems"] == [], f["client_problems"]
    for codes in [*f.get("earlier_attempt_codes", []), f["codes"]]:
        assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED"}, codes
    assert f["accepted"] > 0 and f["rejected"] > 0, f["codes"]
    if timed:
        assert f["offered_rps"] >= MIN_OFFERED_FACTOR * f["capacity_rps"], (f["offered_rps"], f["capacity_rps"])
        assert f["rejected_p50_s"] < REJECTED_P50_S, f"RESOURCE_EXHAUSTED p50 {f['rejected_p50_s']:.3f}s"
        assert f["accepted_p50_s"] < ACCEPTED_P50_S, f"accepted p50 {f['accepted_p50_s']:.3f}s"
        assert f["rejected_p99_s"] < REJECTED_P99_S, f"RESOURCE_EXHAUSTED p99 {f['rejected_p99_s']:.3f}s"
        assert f["accepted_p99_s"] < ACCEPTED_P99_S, f"accepted p99 {f['accepted_p99_s']:.3f}s"
        assert f["health_max_s"] < HEALTH_MAX_S
    assert f["health_failures"] == 0 and f["health_checks"] > 0, f.get("health_failure_examples")
    assert f["mismatches"] == 0, "an accepted call got a different answer than before"
    assert f["after_codes"] == {"OK": 20}, "the server does not answer normally after the overload"
    assert f["exit_code"] == 0


def soak(f: dict, requests: int | None = None) -> None:
    if requests is not None:
        assert f["requests"] == requests, f"{f['requests']} of {requests} requests sent"
    assert f["unexpected"] == 0, f["unexpected_examples"]
    assert f["rss_max_mib"] < RSS_MAX_MIB
    assert f["rss_growth_after_warmup_mib"] < RSS_GROWTH_AFTER_WARMUP_MIB
    assert f["rss_growth_second_half_mib"] < RSS_GROWTH_SECOND_HALF_MIB
    assert max(f["fds"]) - min(f["fds"]) <= FD_SPREAD, f["fds"]
    # handler threads are started on demand up to the pool's size, sooner on a busy machine (a
    # spread of 4 failed once at load average 12: 20 to 25); a leak would pass that bound
    assert max(f["threads"]) <= f["threads_at_start"] + f["handler_pool"], (f["threads"], f["threads_at_start"])
    assert f["same_answer_before_and_after"] and f["layer_version_kept"]
    assert f["exit_code"] == 0
