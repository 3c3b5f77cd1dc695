"""Event-driven functions: one folder each, a thin handler.py over pure logic modules."""
