"""Credentials: the secret value types and the token broker that mints database tokens with databricks-sdk
(``broker`` decides when to refresh, ``_minting`` how to get one). Depends on the package root only."""
