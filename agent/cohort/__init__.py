"""Cohort studies: every policy on the same cases (scenario x seed), locally or on a Ray cluster."""
