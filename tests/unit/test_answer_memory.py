"""The in-memory mirror: generations only move forward, answers die with their generation,
completeness expires, memory stays within its budget."""

from qbproxy.core.memory import Memory

R, E = "1", "Customer"


def test_learned_complete_state_expires() -> None:
    memory = Memory(1000)
    memory.learn(R, E, 3, complete_for=10.0, now=100.0)
    assert memory.complete_generation(R, E, 105.0) == 3
    assert memory.complete_generation(R, E, 110.0) is None
    assert memory.complete_generation(R, "Invoice", 105.0) is None
    memory.learn(R, E, 3, complete_for=-1.0, now=100.0)  # Postgres says: past its TTL
    assert memory.complete_generation(R, E, 100.0) is None


def test_a_late_read_of_old_state_cannot_undo_a_purge() -> None:
    memory = Memory(1000)
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
    memory = Memory(1000)
    key = (R, E, "SELECT * FROM Customer")
    memory.learn(R, E, 5, complete_for=10.0, now=0.0)
    memory.keep(key, 5, b"page")
    assert memory.answer(key, 5) == b"page"
    assert memory.answer(key, 6) is None
    memory.purged(R, E, 6)
    assert memory.answer(key, 5) is None  # dropped with the purge
    assert memory.bytes_held == 0
    memory.keep(key, 5, b"late page")  # computed before the purge, kept after it: refused
    assert memory.answer(key, 5) is None


def test_purge_drops_only_that_table_and_realm() -> None:
    memory = Memory(1000)
    memory.keep((R, E, "a"), 1, b"x")
    memory.keep((R, "Invoice", "a"), 1, b"y")
    memory.keep(("2", E, "a"), 1, b"z")
    memory.purged(R, E, 2)
    assert memory.answer((R, E, "a"), 1) is None
    assert memory.answer((R, "Invoice", "a"), 1) == b"y"
    assert memory.answer(("2", E, "a"), 1) == b"z"


def test_memory_budget_evicts_least_recently_used() -> None:
    memory = Memory(100)
    for i in range(5):
        memory.keep((R, E, str(i)), 1, b"x" * 20)
    memory.answer((R, E, "0"), 1)  # recently used: survives
    memory.keep((R, E, "5"), 1, b"x" * 20)
    assert memory.bytes_held <= 100
    assert memory.answer((R, E, "0"), 1) is not None
    assert memory.answer((R, E, "1"), 1) is None
    memory.keep((R, E, "big"), 1, b"x" * 60)  # over a quarter of the budget: not kept
    assert memory.answer((R, E, "big"), 1) is None


def test_clear_and_disabled() -> None:
    memory = Memory(1000)
    memory.learn(R, E, 1, complete_for=10.0, now=0.0)
    memory.keep((R, E, "a"), 1, b"x")
    memory.clear()
    assert memory.complete_generation(R, E, 1.0) is None
    assert memory.bytes_held == 0
    assert not Memory(0).enabled
