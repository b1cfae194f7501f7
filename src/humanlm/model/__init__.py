"""humanlm.model."""
