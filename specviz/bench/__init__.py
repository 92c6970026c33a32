"""``specviz bench``: side-by-side speed measurements and a cost model that predicts them."""
