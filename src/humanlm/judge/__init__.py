"""humanlm.judge."""
