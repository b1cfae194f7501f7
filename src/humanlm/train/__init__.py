"""humanlm.train."""
