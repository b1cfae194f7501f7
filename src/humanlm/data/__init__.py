"""humanlm.data."""
