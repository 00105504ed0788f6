"""Hypothesis strategies for the query engine: entities, filters, sorts, pages, edits.

Values are drawn from small pools so that filters actually hit: mixed kinds in one field
(numbers, strings, booleans, null, missing, lists), case variants, code-point traps ("Z" / "a",
"p10" / "p2"), dotted own keys next to nested paths, and text from a tiny vocabulary.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

IDS = ["a", "b", "c", "Z", "p10", "p2", "p1", "x.y", "é", "10", "2", "Ab"]
STRINGS = ["", "a", "A", "Z", "ab", "aB", "abc", "p10", "p2", "Zeta", "zeta", "é", "É", "1", "10"]
WORDS = ["apple", "apply", "banana", "bananas", "cherry", "ab", "über", "uber", "x1y2", "déjà"]
FIELDS = ["n", "n", "s", "s", "t", "t", "nested.x", "a.b", "absent"]
TEXT_INDEXED_FIELDS = ["t"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.0, 1.0, 1.5, -2.5, 2.0]),
    st.sampled_from(STRINGS),
)
# Filter values come from a smaller pool that entity values often hit.
HOT = [None, True, False, 0, 1, 1.0, 2, "a", "A", "ab", "p10", "p2", "Zeta", "é"]
hot_scalars = st.sampled_from(HOT)
scalars = st.one_of(hot_scalars, hot_scalars, scalars)
values = st.one_of(scalars, st.lists(st.integers(0, 2), max_size=2), st.just({"k": 1}))
texts = st.lists(st.sampled_from([*WORDS, "Apple", "BANANA", "a_b", "x-ray"]), max_size=4).map(
    " ".join
)


_mostly = st.integers(0, 4).map(bool)


@st.composite
def entity_body(draw: Any) -> dict[str, Any]:
    """An entity without its id: each field may be missing."""
    body: dict[str, Any] = {}
    if draw(_mostly):
        body["n"] = draw(values)
    if draw(_mostly):
        body["s"] = draw(st.one_of(st.sampled_from(STRINGS), scalars))
    if draw(_mostly):
        body["t"] = draw(st.one_of(texts, texts, scalars))
    nested = draw(st.sampled_from(["none", "dict", "scalar"]))
    if nested == "dict":
        body["nested"] = {"x": draw(values)} if draw(st.booleans()) else {}
    elif nested == "scalar":
        body["nested"] = draw(scalars)
    # "a.b": sometimes an own dotted key, sometimes a nested path, sometimes both.
    shape = draw(st.sampled_from(["none", "own", "path", "both"]))
    if shape in ("own", "both"):
        body["a.b"] = draw(scalars)
    if shape in ("path", "both"):
        body["a"] = {"b": draw(scalars)}
    return body


@st.composite
def entity_maps(draw: Any, min_size: int = 0) -> dict[str, dict[str, Any]]:
    ids = draw(st.lists(st.sampled_from(IDS), unique=True, min_size=max(min_size, 1)))
    return {i: {"id": i, **draw(entity_body())} for i in ids}


def _leaf(field: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(lambda v: {"op": "eq", "field": field, "value": v}, hot_scalars),
        st.builds(
            lambda vs: {"op": "in", "field": field, "values": vs},
            st.lists(hot_scalars, max_size=4),
        ),
        st.builds(
            lambda op, v: {"op": op, "field": field, "value": v},
            st.sampled_from(["gt", "gte", "lt", "lte"]),
            st.one_of(st.integers(-3, 3), st.sampled_from([0.5, 1.0]), st.sampled_from(STRINGS)),
        ),
        st.builds(
            lambda op, v: {"op": op, "field": field, "value": v},
            st.sampled_from(["startsWith", "endsWith", "contains"]),
            st.sampled_from(STRINGS),
        ),
        st.builds(lambda op: {"op": op, "field": field}, st.sampled_from(["isNull", "exists"])),
        st.builds(
            lambda q, mode, d: {
                "op": "text",
                "field": field,
                "query": q,
                "mode": mode,
                "distance": d,
            },
            st.one_of(texts, st.sampled_from(["aple", "banan", "bananna", "ubr", "chery x"])),
            st.sampled_from(["match", "fuzzy"]),
            st.sampled_from([0, 1, 2]),
        ),
    )


leaf_filters = st.sampled_from(FIELDS).flatmap(_leaf)

filters = st.recursive(
    leaf_filters,
    lambda children: st.one_of(
        st.builds(lambda a: {"op": "and", "args": a}, st.lists(children, max_size=3)),
        st.builds(lambda a: {"op": "or", "args": a}, st.lists(children, max_size=3)),
        st.builds(lambda a: {"op": "not", "arg": a}, children),
    ),
    max_leaves=5,
)

sorts = st.lists(
    st.fixed_dictionaries(
        {"field": st.sampled_from([*FIELDS, "id"]), "dir": st.sampled_from(["asc", "desc"])}
    ),
    max_size=3,
)

counts = st.one_of(st.none(), st.integers(-2, 6), st.sampled_from([0.5, 2.7, -1.5]))

offset_pages = st.builds(
    lambda limit, offset, total: {
        k: v
        for k, v in {
            "mode": "offset",
            "limit": limit,
            "offset": offset,
            "includeTotal": total,
        }.items()
        if v is not None
    },
    counts,
    counts,
    st.one_of(st.none(), st.booleans()),
)

first_cursor_pages = st.builds(
    lambda limit: {"mode": "cursor"} if limit is None else {"mode": "cursor", "limit": limit},
    st.one_of(st.none(), st.integers(0, 5)),
)

pages = st.one_of(st.none(), offset_pages, first_cursor_pages)


@st.composite
def queries(draw: Any) -> dict[str, Any]:
    q: dict[str, Any] = {}
    if draw(_mostly):
        q["filter"] = draw(filters)
    if draw(st.booleans()):
        q["sort"] = draw(sorts)
    page = draw(pages)
    if page is not None:
        q["page"] = page
    return q


edits = st.lists(
    st.tuples(st.sampled_from(["put", "remove"]), st.sampled_from(IDS), entity_body()),
    max_size=25,
)
