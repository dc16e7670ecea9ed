"""Testing a job with the lakebase-spark pytest plugin: no workspace, a real Postgres, real Spark.

Run it with ``pytest examples/``: the fixtures come from the installed package (``pytest11`` entry
point), nothing to import or configure.
"""

from __future__ import annotations

from customer_totals import customer_totals


def test_customer_totals(lakebase_spark_session, lakebase_endpoint, lakebase_admin, lakebase_emulator):
    lakebase_admin.execute("DROP TABLE IF EXISTS public.orders, public.customer_totals")
    lakebase_admin.execute("CREATE TABLE public.orders (id bigint, customer text, amount numeric(10,2))")
    lakebase_admin.execute(
        "INSERT INTO public.orders VALUES (1, 'ann', 10.50), (2, 'bob', 3.00), (3, 'ann', 1.25)"
    )
    lakebase_admin.execute(f'GRANT SELECT ON public.orders TO "{lakebase_emulator.user_name}"')
    lakebase_admin.execute(f'GRANT CREATE ON SCHEMA public TO "{lakebase_emulator.user_name}"')

    result = customer_totals(lakebase_spark_session, lakebase_endpoint)

    assert result.rows == 2
    totals = lakebase_admin.execute(
        "SELECT customer, orders, revenue FROM public.customer_totals ORDER BY customer"
    ).fetchall()
    assert [(c, n, float(r)) for c, n, r in totals] == [("ann", 2, 11.75), ("bob", 1, 3.0)]
