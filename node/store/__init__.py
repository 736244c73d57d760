"""SQLAlchemy models and the only code in lapor-node that issues SQL."""
