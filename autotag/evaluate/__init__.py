"""Metrics (scikit-learn, mir_eval), metric tables and the HTML report."""
