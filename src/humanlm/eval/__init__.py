"""humanlm.eval."""
