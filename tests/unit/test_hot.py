"""The in-memory mirror: generations only move forward, answers die with their generation,
completeness expires, memory stays within its budget."""

from qbproxy.core.memory import HotCache

R, E = "1", "Customer"


def test_learned_complete_state_expires() -> None:
    hot = HotCache(1000)
    hot.learn(R, E, 3, complete_for=10.0, now=100.0)
    assert hot.complete_generation(R, E, 105.0) == 3
    assert hot.complete_generation(R, E, 110.0) is None
    assert hot.complete_generation(R, "Invoice", 105.0) is None
    hot.learn(R, E, 3, complete_for=-1.0, now=100.0)  # Postgres says: past its TTL
    assert hot.complete_generation(R, E, 100.0) is None


def test_a_late_read_of_old_state_cannot_undo_a_purge() -> None:
    hot = HotCache(1000)
    hot.learn(R, E, 3, complete_for=10.0, now=0.0)
    hot.purged(R, E, 4)
    assert hot.complete_generation(R, E, 1.0) is None
    hot.learn(R, E, 3, complete_for=10.0, now=1.0)  # a read that started before the purge
    assert hot.complete_generation(R, E, 2.0) is None
    hot.learn(R, E, 4, complete_for=10.0, now=2.0)  # reloaded after it
    assert hot.complete_generation(R, E, 3.0) == 4
    hot.purged(R, E, 3)  # an older notification arriving late changes nothing
    assert hot.complete_generation(R, E, 3.0) == 4


def test_answers_are_served_only_under_their_generation() -> None:
    hot = HotCache(1000)
    key = (R, E, "SELECT * FROM Customer")
    hot.learn(R, E, 5, complete_for=10.0, now=0.0)
    hot.keep(key, 5, b"page")
    assert hot.answer(key, 5) == b"page"
    assert hot.answer(key, 6) is None
    hot.purged(R, E, 6)
    assert hot.answer(key, 5) is None  # dropped with the purge
    assert hot.bytes_held == 0
    hot.keep(key, 5, b"late page")  # computed before the purge, kept after it: refused
    assert hot.answer(key, 5) is None


def test_purge_drops_only_that_table_and_realm() -> None:
    hot = HotCache(1000)
    hot.keep((R, E, "a"), 1, b"x")
    hot.keep((R, "Invoice", "a"), 1, b"y")
    hot.keep(("2", E, "a"), 1, b"z")
    hot.purged(R, E, 2)
    assert hot.answer((R, E, "a"), 1) is None
    assert hot.answer((R, "Invoice", "a"), 1) == b"y"
    assert hot.answer(("2", E, "a"), 1) == b"z"


def test_memory_budget_evicts_least_recently_used() -> None:
    hot = HotCache(100)
    for i in range(5):
        hot.keep((R, E, str(i)), 1, b"x" * 20)
    hot.answer((R, E, "0"), 1)  # recently used: survives
    hot.keep((R, E, "5"), 1, b"x" * 20)
    assert hot.bytes_held <= 100
    assert hot.answer((R, E, "0"), 1) is not None
    assert hot.answer((R, E, "1"), 1) is None
    hot.keep((R, E, "big"), 1, b"x" * 60)  # over a quarter of the budget: not kept
    assert hot.answer((R, E, "big"), 1) is None


def test_clear_and_disabled() -> None:
    hot = HotCache(1000)
    hot.learn(R, E, 1, complete_for=10.0, now=0.0)
    hot.keep((R, E, "a"), 1, b"x")
    hot.clear()
    assert hot.complete_generation(R, E, 1.0) is None
    assert hot.bytes_held == 0
    assert not HotCache(0).enabled
