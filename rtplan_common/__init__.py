"""Small utilities shared by the agent, the simulated TPS and the benches (no domain logic)."""
