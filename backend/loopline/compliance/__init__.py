"""Compliance: erasure of personal data inside retained quality records, and the audit chain as evidence."""
