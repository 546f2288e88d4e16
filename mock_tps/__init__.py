"""A simulated treatment planning system: phantoms, pencil-beam dose, fluence optimizer, DVHs."""
