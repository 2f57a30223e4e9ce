"""The in-memory mirror: generations only move forward, answers die with their generation,
completeness expires, memory stays within its budget counting what answers really cost (keys
and per-entry overhead), and a purge does work in proportion to what it removes."""

import gc
import sys
import tracemalloc

from qbproxy.core.memory import ENTRY_OVERHEAD, SWEEP_STEP, Memory, answer_cost

R, E = "1", "Customer"


def cost(text: str, body: bytes, realm: str = R) -> int:
    return answer_cost((realm, E, text), body)


def test_learned_complete_state_expires() -> None:
    memory = Memory(10_000)
    memory.learn(R, E, 3, complete_for=10.0, now=100.0)
    assert memory.complete_generation(R, E, 105.0) == 3
    assert memory.complete_generation(R, E, 110.0) is None
    assert memory.complete_generation(R, "Invoice", 105.0) is None
    memory.learn(R, E, 3, complete_for=-1.0, now=100.0)  # Postgres says: past its TTL
    assert memory.complete_generation(R, E, 100.0) is None


def test_a_late_read_of_old_state_cannot_undo_a_purge() -> None:
    memory = Memory(10_000)
    memory.learn(R, E, 3, complete_for=10.0, now=0.0)
    memory.purged(R, E, 4)
    assert memory.complete_generation(R, E, 1.0) is None
    memory.learn(R, E, 3, complete_for=10.0, now=1.0)  # a read that started before the purge
    assert memory.complete_generation(R, E, 2.0) is None
    memory.learn(R, E, 4, complete_for=10.0, now=2.0)  # reloaded after it
    assert memory.complete_generation(R, E, 3.0) == 4
    memory.purged(R, E, 3)  # an older notification arriving late changes nothing
    assert memory.complete_generation(R, E, 3.0) == 4


def test_answers_are_served_only_under_their_generation() -> None:
    memory = Memory(10_000)
    key = (R, E, "SELECT * FROM Customer")
    memory.learn(R, E, 5, complete_for=10.0, now=0.0)
    memory.keep(key, 5, b"page")
    assert memory.answer(key, 5) == b"page"
    assert memory.answer(key, 6) is None
    memory.purged(R, E, 6)
    assert memory.answer(key, 5) is None  # dropped with the purge
    assert memory.bytes_held == 0
    assert memory.entries == 0
    memory.keep(key, 5, b"late page")  # computed before the purge, kept after it: refused
    assert memory.answer(key, 5) is None
    assert memory.bytes_held == 0


def test_purge_drops_only_that_table_and_realm() -> None:
    memory = Memory(10_000)
    memory.keep((R, E, "a"), 1, b"x")
    memory.keep((R, "Invoice", "a"), 1, b"y")
    memory.keep(("2", E, "a"), 1, b"z")
    memory.purged(R, E, 2)
    assert memory.answer((R, E, "a"), 1) is None
    assert memory.answer((R, "Invoice", "a"), 1) == b"y"
    assert memory.answer(("2", E, "a"), 1) == b"z"
    assert memory.bytes_held == cost("a", b"y") + cost("a", b"z", "2")


def test_memory_budget_evicts_least_recently_used() -> None:
    one = cost("0", b"x" * 20)
    memory = Memory(5 * one)
    for i in range(5):
        memory.keep((R, E, str(i)), 1, b"x" * 20)
    assert memory.entries == 5
    memory.answer((R, E, "0"), 1)  # recently used: survives
    memory.keep((R, E, "5"), 1, b"x" * 20)
    assert memory.bytes_held <= 5 * one
    assert memory.answer((R, E, "0"), 1) is not None
    assert memory.answer((R, E, "1"), 1) is None
    memory.keep((R, E, "big"), 1, b"x" * (2 * one))  # over a quarter of the budget: not kept
    assert memory.answer((R, E, "big"), 1) is None


def test_clear_and_disabled() -> None:
    memory = Memory(10_000)
    memory.learn(R, E, 1, complete_for=10.0, now=0.0)
    memory.keep((R, E, "a"), 1, b"x")
    memory.clear()
    assert memory.complete_generation(R, E, 1.0) is None
    assert memory.bytes_held == 0
    assert memory.entries == 0
    assert not Memory(0).enabled


# -- what an answer costs --------------------------------------------------------------------


def test_an_answer_costs_its_key_its_body_and_the_overhead() -> None:
    text, body = "SELECT * FROM Customer WHERE Id = '7'", b'{"totalCount":1}'
    assert cost(text, body) == (
        ENTRY_OVERHEAD + sys.getsizeof(R) + sys.getsizeof(text) + sys.getsizeof(body)
    )
    huge = "x" * 90_000
    assert cost(huge, body) > 90_000
    assert cost("é" * 1000, b"") > cost("e" * 1000, b"")  # wider characters cost more


def test_distinct_huge_keys_stay_within_the_budget() -> None:
    """Issue 14, item 6: 2,000 COUNT(*) queries with distinct 90,000-character literals
    against a 1 MiB budget used to keep them all (the keys were not counted)."""
    budget = 1024 * 1024
    memory = Memory(budget)
    for i in range(2000):
        text = f"SELECT COUNT(*) FROM Customer WHERE DisplayName = '{i:08d}{'x' * 89_992}'"
        memory.keep((R, E, text), 1, b'{"totalCount":0}')
        assert memory.bytes_held <= budget
    assert 1 <= memory.entries <= budget // 90_000


def test_many_small_answers_stay_within_the_budget() -> None:
    budget = 1_000_000
    memory = Memory(budget)
    for i in range(20_000):
        memory.keep((str(i % 7), E, f"SELECT * FROM Customer WHERE Id = '{i}'"), 1, b"{}")
        assert memory.bytes_held <= budget
    assert memory.entries <= budget // ENTRY_OVERHEAD
    assert memory.entries > budget // (2 * ENTRY_OVERHEAD)  # and the budget is used


def test_entry_overhead_covers_what_python_spends() -> None:
    """The counted cost is at least what the allocations of fresh keys, bodies and the
    memory's own structures add up to (tracemalloc: Python's allocator, not RSS; RSS is
    compared in `python -m bench memory`)."""
    memory = Memory(10**9)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(50_000):
            realm = str(9130350000000000 + i % 40)
            memory.keep((realm, E, f"SELECT * FROM Customer WHERE Id = '{i}'"), 1, b"%d" % i)
        spent = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert spent <= memory.bytes_held, (spent / memory.entries, memory.bytes_held / 50_000)


# -- what a purge costs ----------------------------------------------------------------------


def fill(memory: Memory, realm: str, entity: str, n: int, generation: int = 1) -> None:
    for i in range(n):
        memory.keep((realm, entity, f"q{i}"), generation, b"%d" % i)


def test_a_purge_frees_at_most_a_step_and_serves_none_of_the_rest() -> None:
    memory = Memory(10**9)
    big = 3 * SWEEP_STEP + 5
    fill(memory, R, E, big)
    fill(memory, R, "Invoice", 10)
    fill(memory, "2", E, 10)
    others = memory.bytes_held - sum(cost(f"q{i}", b"%d" % i) for i in range(big))
    memory.purged(R, E, 2)
    # Bounded work: exactly one step freed now, whatever the table held.
    assert memory.entries == big + 20 - SWEEP_STEP
    assert memory.pending == big - SWEEP_STEP
    memory.learn(R, E, 2, complete_for=10.0, now=0.0)
    assert all(memory.answer((R, E, f"q{i}"), 2) is None for i in range(big))
    assert all(memory.answer((R, E, f"q{i}"), 1) is None for i in range(big))
    # Later calls free the rest, and exactly the purged table's answers.
    memory.sweep(10**9)
    assert memory.pending == 0
    assert memory.entries == 20
    assert memory.bytes_held == others
    assert all(memory.answer((R, "Invoice", f"q{i}"), 1) is not None for i in range(10))
    assert all(memory.answer(("2", E, f"q{i}"), 1) is not None for i in range(10))


def test_keeps_free_what_purges_left() -> None:
    memory = Memory(10**9)
    fill(memory, R, E, 2 * SWEEP_STEP)
    memory.purged(R, E, 2)
    assert memory.pending == SWEEP_STEP
    memory.keep((R, "Invoice", "q"), 1, b"x")
    assert memory.pending == 0
    assert memory.entries == 1


def test_an_answer_kept_again_after_a_purge_survives_the_sweep() -> None:
    memory = Memory(10**9)
    fill(memory, R, E, SWEEP_STEP + 10)
    memory.purged(R, E, 2)
    key = (R, E, f"q{SWEEP_STEP + 9}")  # still waiting to be freed, or not: either way
    memory.keep(key, 2, b"new")
    memory.sweep(10**9)
    assert memory.answer(key, 2) == b"new"
    assert memory.entries == 1
    assert memory.bytes_held == cost(key[2], b"new")


def test_answers_of_an_older_generation_are_dropped_when_the_table_moves_on() -> None:
    memory = Memory(10**9)
    memory.learn(R, E, 1, complete_for=10.0, now=0.0)
    fill(memory, R, E, 10)
    memory.learn(R, E, 2, complete_for=10.0, now=1.0)  # a CDC landed: generation 2
    assert memory.entries == 0
    memory.keep((R, E, "a"), 2, b"x")
    memory.keep((R, E, "b"), 1, b"y")  # computed before the move: refused
    assert memory.entries == 1
    # Met at read time under a newer generation, an old answer is dropped.
    memory.keep(("2", E, "a"), 1, b"z")
    assert memory.answer(("2", E, "a"), 3) is None
    assert memory.entries == 1


def test_evicted_answers_leave_their_table_index() -> None:
    one = cost("q0", b"0")
    memory = Memory(4 * one + one // 2)
    fill(memory, R, E, 100)
    assert memory.entries == 4
    memory.purged(R, E, 2)
    assert memory.entries == 0
    assert memory.pending == 0
    assert memory.bytes_held == 0
