"""Adapters of the ``TpsSession`` port: the simulated TPS (``mock``) and Eclipse (``esapi``)."""
