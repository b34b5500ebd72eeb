"""Task overriding (the paper's Table 5): its items (`data`), its three methods (`methods`), the
judge that says which task an answer addresses (`verdicts`, `judge`), and the scoring of a
run's generations (`scoring`)."""
