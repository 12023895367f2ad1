"""Budgets that cannot be overspent: policy (``policy``: rules/budgets.yaml), calendar periods
(``periods``), the engine that reserves an exchange's worst case and settles its real cost
(``engine``), and the state stores (``store``: embedded SQLite, or Redis shared by gateways).

Import the submodules directly: the command-line reader needs the policy and the stores, not
the engine and its price tables.
"""
