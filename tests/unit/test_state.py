import copy
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from evd.state import State, apply_ops

KEYS = st.sampled_from(["a", "b", "c"])
PATHS = st.lists(KEYS, min_size=1, max_size=3).map(tuple)
VALUES = st.one_of(st.integers(0, 9), st.dictionaries(KEYS, st.integers(0, 9), max_size=2))
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), PATHS, VALUES),
        st.tuples(st.just("del"), PATHS),
        st.tuples(st.just("append"), PATHS, st.integers(0, 9)),
    ),
    max_size=30,
)


def run(state, op):
    try:
        if op[0] == "set":
            state.set(op[1], copy.deepcopy(op[2]))
        elif op[0] == "del":
            state.delete(op[1])
        else:
            state.append(op[1], op[2], limit=3)
    except (TypeError, AttributeError):
        pass  # a path through a non-mapping value: not a valid change


@settings(max_examples=300, deadline=None)
@given(OPS, OPS)
def test_coalesced_ops_rebuild_the_current_tree(before, after):
    state = State()
    for op in before:
        run(state, op)
    watcher = state.watch()
    client = state.snapshot()
    for op in after:
        run(state, op)
    kind, ops = watcher.take()
    assert kind == "update"
    # Through JSON, as the control socket sends them (a deep copy would keep shared references).
    assert apply_ops(client, json.loads(json.dumps(ops))) == state.data


def test_repeated_sets_coalesce_to_the_last():
    state = State()
    watcher = state.watch()
    for kwh in range(100):
        state.set(("cps", "ALC1", "kwh"), kwh)
    assert watcher.take() == ("update", [["set", ["cps", "ALC1", "kwh"], 99]])


def test_overflow_turns_into_a_snapshot(monkeypatch):
    monkeypatch.setattr("evd.state.MAX_PENDING_OPS", 5)
    state = State()
    watcher = state.watch()
    for i in range(10):
        state.set(("cps", str(i)), i)
    kind, tree = watcher.take()
    assert kind == "snapshot"
    assert tree == {"cps": {str(i): i for i in range(10)}}


def test_append_keeps_the_last_items():
    state = State()
    for i in range(5):
        state.append(("messages",), i, limit=3)
    assert state.get(("messages",)) == [2, 3, 4]
