from customer_graph.graph.params import BATCH, in_one_map


def test_every_parameter_is_read_from_the_one_map() -> None:
    text, names = in_one_map(
        "UNWIND $rows AS row MATCH (i:Identifier {key: row.key})\n"
        "SET i.type = $info[row.key].type, i.seenAt = $now_2"
    )
    assert text == (
        f"UNWIND ${BATCH}.rows AS row MATCH (i:Identifier {{key: row.key}})\n"
        f"SET i.type = ${BATCH}.info[row.key].type, i.seenAt = ${BATCH}.now_2"
    )
    assert names == {"rows", "info", "now_2"}


def test_a_statement_without_parameters_is_unchanged() -> None:
    assert in_one_map("RETURN 1 AS one") == ("RETURN 1 AS one", frozenset())
