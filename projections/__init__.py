"""Read models kept up to date from `itil.events`, each owning its tables and queries."""
